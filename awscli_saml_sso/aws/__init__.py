"""What AWS gives back: the SAML assertion, roles, STS, the AWS files and shell exports."""
