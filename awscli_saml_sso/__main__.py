from awscli_saml_sso.main import main

main()
