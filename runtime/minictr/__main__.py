from minictr.cli import main

main()
