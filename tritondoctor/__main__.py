from tritondoctor.cli import main

main()
