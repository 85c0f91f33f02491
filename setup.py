"""Build of the one native module; everything else is in pyproject.toml.

``abusedesk.parsers._mailscan`` reads a feedback report's header blocks in C (issue 4). It is optional: without a
C compiler the install goes on and the ARF parser reads the same blocks with ``parsers/fastmime.py`` (slower; the
same events). ``make`` builds it in place; the test suite fails under CI=true when it is missing.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "abusedesk.parsers._mailscan",
            ["src/abusedesk/parsers/_mailscan.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
            optional=True,
        )
    ]
)
