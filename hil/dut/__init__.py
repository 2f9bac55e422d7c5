"""The module under test on its bench: the `Device` the suites drive, and what keeps it usable.

device.py is the DUT as the suites see it (its AT API, boot, power cycle); recovery.py brings
it back to a known state between tests; portfind.py finds its port again after it
re-enumerated; preflight.py checks the port and the broker's port before a run; usbserial.py
reads and sets the USB adapter's latency timer. Import the modules themselves: this package
re-exports nothing, so reading one of them does not load the rest.
"""

__all__ = ["device", "portfind", "preflight", "recovery", "usbserial"]
