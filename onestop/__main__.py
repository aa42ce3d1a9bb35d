from onestop.cli import main

main()
