from tests.intake.dovecot import dovecot  # noqa: F401 - fixture
from tests.intake.mailsink import mail_sink  # noqa: F401 - fixture
