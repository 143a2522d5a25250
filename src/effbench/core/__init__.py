"""effbench's measurement core: timing loops, statistics, runtime sessions, fingerprint, memory.

Standard library and numpy only (each runtime is imported when a session of it is opened), Python
3.8 syntax, and relative imports only: the remote agent ships exactly these files, under another
package name, to devices that have no effbench. Nothing here imports the rest of effbench.
"""
