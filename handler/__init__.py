"""The processor's package, shipped to Lambda as the `handler/` folder.

A regular package, not a namespace package: a `handler` folder or module elsewhere
on the path (a layer, the runtime's own files) cannot shadow or merge with it.
"""
