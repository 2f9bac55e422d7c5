"""The harness's pytest plugins: the device under test, the broker, the MQTT peer."""

pytest_plugins = [
    "fixtures.dut",
    "fixtures.results",
    "fixtures.broker",
    "fixtures.peer",
    "fixtures.spec",
    "fixtures.characterize",
    "fixtures.capabilities",
    "fixtures.report",  # before fixtures.timing, which imports it
    "fixtures.timing",
    "fixtures.farm",
]
