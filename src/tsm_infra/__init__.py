"""tsm-infra: stand up a Blockdaemon Builder Vault TSM cluster across AWS accounts."""
