from minictr.daemon import main

main()
