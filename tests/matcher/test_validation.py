from include.matcher.settings import GateConfig
from include.matcher.validation import decide


def result(mrr):
    return {"metrics": {"mrr@10": mrr, "accuracy@1": mrr}}


def test_gate_requires_min_improvement():
    gate = GateConfig(min_improvement=0.02)
    assert decide(result(0.80), result(0.75), gate, held_out=50)["promote"]
    assert not decide(result(0.76), result(0.75), gate, held_out=50)["promote"]
    assert not decide(result(0.70), result(0.75), gate, held_out=50)["promote"]


def test_gate_refuses_without_held_out_data():
    decision = decide(result(0.9), result(0.1), GateConfig(), held_out=0)
    assert not decision["promote"] and "no held-out" in decision["reason"]


def test_reason_names_the_numbers():
    reason = decide(result(0.8), result(0.7), GateConfig(min_improvement=0.05), held_out=10)["reason"]
    assert "0.8000" in reason and "0.7000" in reason and "+0.0500" in reason
