from awscli_saml_sso.cli import main

main()
