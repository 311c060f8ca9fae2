"""Sub-commands of the `regaze` CLI. Each module defines `register(subparsers)`; the parser it adds
sets `func` to a function taking the parsed arguments. Modules import heavy dependencies lazily so that
`regaze --help` stays fast."""
