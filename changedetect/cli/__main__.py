from changedetect.cli import main

main()
