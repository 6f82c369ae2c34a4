"""`python -m kubestep`: the CLI, as the `kubestep` command runs it. (Imported only when run: the
Lambda asset carries this package without its `cli`.)"""

if __name__ == "__main__":
    from kubestep.cli.main import main

    main()
