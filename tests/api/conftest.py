from tests.intake.mailsink import mail_sink  # noqa: F401 - fixture
