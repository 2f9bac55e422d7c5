"""The AT serial line: framer.py cuts bytes into lines and prompts and exchange.py decides
which of them answer a command (both pure, no I/O); portio.py makes the port's system calls;
channel.py runs the reader thread and lends the port; transcript.py keeps what was said.
Import the modules themselves: this package re-exports nothing, so the pure ones load no
serial stack."""

__all__ = ["channel", "exchange", "framer", "portio", "transcript"]
