"""Actions carried out for cases: notices by e-mail, control-plane calls by webhook, evidence exports."""
