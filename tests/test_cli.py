"""The `lever` command line through click's CliRunner, against an Anvil of its own (the
commands connect with `--network <its URL>` and leave the session's chain alone)."""

import json

import pytest
from click.testing import CliRunner
from helpers import free_port, start_anvil

from lever.cli import cli


@pytest.fixture(scope="module")
def node(chain):
    # Runs once, in the Anvil session: the commands talk to an Anvil of their own either way, and
    # under the in-process session ape estimates the second connection's gas differently.
    if chain.provider.name != "foundry":
        pytest.skip("runs in the Anvil session")
    port = free_port()
    process = start_anvil(port)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return tmp_path_factory.mktemp("deployments")


@pytest.fixture
def lever(node, records, monkeypatch):
    """`lever(*args)` runs the command against the module's Anvil; deployments go to `records`."""
    monkeypatch.setenv("LEVER_DEPLOYMENTS_DIR", str(records))
    runner = CliRunner()

    def _run(*args: str, code: int = 0):
        """Asserts the exit code; a failure must end in exactly one `error: ...` line."""
        result = runner.invoke(cli, [*args, "--network", node])
        assert result.exit_code == code, (result.output, result.exception)
        if code:
            errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
            assert len(errors) == 1 and result.output.rstrip().endswith(errors[0]), result.output
            assert "Traceback" not in result.output and "Usage" not in result.output
        return result.output

    return _run


@pytest.fixture(scope="module")
def deployed(node, records):
    """A deployment shared by the module's tests, made through the CLI."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LEVER_DEPLOYMENTS_DIR", str(records))
        result = CliRunner().invoke(cli, ["deploy", "--network", node])
    assert result.exit_code == 0, result.output
    return json.loads((records / "31337.json").read_text())


def test_deploy_records_addresses_block_deployer_and_parameters(deployed):
    assert set(deployed["contracts"]) == {"token", "oracle", "vault", "engine", "liquidator"}
    assert set(deployed["markets"]) == {"ETH-USD", "BTC-USD"} == set(deployed["feeds"])
    assert deployed["block"] > 0 and deployed["deployer"].startswith("0x")
    assert deployed["parameters"]["markets"]["ETH-USD"]["max_leverage"] == 25


def test_deploy_refuses_a_recorded_live_deployment_unless_fresh(deployed, lever, records):
    out = lever("deploy", code=1)
    assert "already has a Lever deployment" in out and "--fresh" in out
    assert json.loads((records / "31337.json").read_text()) == deployed  # nothing replaced
    lever("deploy", "--fresh")
    assert json.loads((records / "31337.json").read_text())["contracts"]["engine"] != deployed["contracts"]["engine"]


def test_trade_round_trip_shows_in_status_and_returns_the_margin(deployed, lever):
    lever("token", "mint", "1000000", "--account", "test:1")
    assert "lvLP" in lever("lp", "deposit", "500000", "--account", "test:1")
    lever("token", "mint", "5000", "--account", "test:2")
    out = lever("trade", "open", "ETH-USD", "long", "2", "--leverage", "10", "--account", "test:2")
    assert "ETH-USD +2" in out and "liquidation price" in out
    status = json.loads(lever("status", "--json"))
    (account,) = status["accounts"]
    assert account["positions"][0]["market"] == "ETH-USD" and float(account["health"]) > 1
    assert status["solvent"] is True and float(status["pool_assets"]) >= 500_000
    lever("price", "set", "ETH-USD", "2950")
    out = lever("trade", "close", "ETH-USD", "--withdraw", "--account", "test:2")
    assert "withdrew" in out
    assert json.loads(lever("status", "--json"))["accounts"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("trade", "open", "DOGE-USD", "long", "1", "--account", "test:3"), "unknown market 'DOGE-USD'"),
        (("trade", "open", "ETH-USD", "long", "abc", "--account", "test:3"), "not a number: 'abc'"),
        (("trade", "open", "ETH-USD", "sideways", "1", "--account", "test:3"), "'sideways' is not one of"),
        (("trade", "open", "ETH-USD", "long", "1", "--margin", "10", "--account", "test:3"), "holds 0"),
        (("price", "set", "ETH-USD", "2500.123456789"), "more than 8 decimal places"),
        (("price", "set", "ETH-USD", "0"), "the price must be above zero"),
        (("lp", "redeem", "all", "--account", "test:5"), "holds no lvLP shares"),
        (("margin", "withdraw", "1", "--account", "test:6"), "has no Lever account"),
        (("trade", "open", "ETH-USD", "long", "1", "--account", "test:0", "--account-id", "999"), "account 999 does not exist"),
    ],
)
def test_user_mistakes_are_one_line_and_a_nonzero_exit(deployed, lever, args, message):
    usage = message.startswith(("not a number", "'sideways'"))  # click's own checks exit with 2
    assert message in lever(*args, code=2 if usage else 1)


def test_contract_errors_are_decoded_into_words(deployed, lever):
    lever("token", "mint", "100", "--account", "test:4")
    out = lever("trade", "open", "ETH-USD", "long", "10", "--margin", "100", "--account", "test:4", code=1)
    assert "leverage" in out and "above market 0's maximum 25.00x" in out and "stays in account" in out
    out = lever("margin", "withdraw", "1000", "--account", "test:4", code=1)
    assert "cannot withdraw 1,000" in out and "of margin" in out


def test_no_deployment_on_this_chain_is_one_line(lever, tmp_path, monkeypatch):
    monkeypatch.setenv("LEVER_DEPLOYMENTS_DIR", str(tmp_path / "empty"))
    assert "no deployment recorded for chain 31337" in lever("status", code=1)


def test_malformed_deployment_record_is_one_line(lever, tmp_path, monkeypatch):
    monkeypatch.setenv("LEVER_DEPLOYMENTS_DIR", str(tmp_path))
    (tmp_path / "31337.json").write_text("{not json")
    assert "malformed deployment record" in lever("status", code=1)


def test_unknown_network_is_one_line(lever):
    result = CliRunner().invoke(cli, ["status", "--network", "ethereum:local:nope"])
    assert result.exit_code == 1 and result.output.startswith("error: unknown network")


@pytest.mark.parametrize(
    ("config", "extra", "message"),
    [
        (None, [], "cannot reach the RPC at http://127.0.0.1:9"),
        ('poll_interval = "abc"', [], "invalid keeper setting poll_interval"),
        ("nonsense = 1", [], "invalid keeper setting nonsense: Extra inputs are not permitted"),
        ("[[[", [], "invalid keeper config file"),
        (None, ["--max-batch", "-5"], "invalid keeper setting max_batch"),
        (None, ["--config", "/nonexistent/keeper.toml"], "keeper config file not found"),
    ],
)
def test_keeper_bad_configuration_or_unreachable_rpc_is_one_line(tmp_path, config, extra, message):
    """The keeper checks its settings before it connects, and an RPC nobody answers is named."""
    args = ["keeper", "run", "--rpc-url", "http://127.0.0.1:9", *extra]
    if config is not None:
        (tmp_path / "keeper.toml").write_text(config)
        args += ["--config", str(tmp_path / "keeper.toml")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [result.output.strip()] and message in result.output
    assert result.output.startswith("error: ")


def test_unreachable_rpc_is_one_line():
    result = CliRunner().invoke(cli, ["status", "--network", "http://127.0.0.1:9"])
    assert result.exit_code == 1 and result.output.startswith("error: ")
    assert len(result.output.strip().splitlines()) == 1 and "http://127.0.0.1:9" in result.output
