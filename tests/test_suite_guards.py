"""The suite's own guards: a hung test fails with its name (pytest-timeout), not CI's time-out."""


def test_a_hang_fails_fast_with_a_name(request):
    assert request.config.pluginmanager.hasplugin("timeout"), "pytest-timeout is not installed"
    assert float(request.config.getini("timeout")) == 300
