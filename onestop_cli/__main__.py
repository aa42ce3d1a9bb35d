from onestop_cli import main

main()
