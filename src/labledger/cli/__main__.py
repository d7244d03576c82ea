from labledger.cli import main

main()
