"""The harness's pytest plugins: the device under test, the broker, the MQTT peer."""

pytest_plugins = ["fixtures.dut", "fixtures.broker", "fixtures.peer"]
