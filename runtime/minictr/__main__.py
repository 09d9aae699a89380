from minictr.main import main

main()
