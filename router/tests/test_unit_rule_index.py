"""The memoised rule index picks exactly the rule an ordered first-match scan picks.

``RuleIndex`` remembers, per (intent, tenant, privacy, priority), which rules pass those four
conditions; token and metadata conditions are checked per task. A hypothesis property compares it
with the plain ordered scan over generated policies and tasks (the same index instance is asked
again and again, so memoised answers are compared too), and two examples pin the cases a wrong
memo would break: the same key with different metadata or token counts.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.engine import TaskSpec, select_rule
from router.policy import Choice, Match, Policy, Rule, RuleIndex, parse_policy

INTENTS = ["chat.answer", "chat.summarize", "embed.text", "code.review"]
TENANTS = ["acme", "globex", "acme-eu"]
PRIVACY = ["allow-api", "local-only", "hybrid"]
PRIORITY = ["low", "normal", "high"]


def scan(rules: tuple[Rule, ...], spec: TaskSpec) -> str:
    """The reference: the ordered scan the router did before the index."""
    for rule in rules:
        if rule.match.matches(
            intent=spec.intent,
            tenant_id=spec.tenant_id,
            privacy=spec.privacy,
            priority=spec.priority,
            input_tokens=spec.input_tokens,
            metadata=spec.metadata,
        ):
            return f"rule:{rule.name}"
    return "default"


matches = st.builds(
    Match,
    intents=st.lists(st.sampled_from(["chat.*", "embed.*", "*", "code.review", "chat.answer"]), max_size=2).map(tuple),
    tenants=st.lists(st.sampled_from(["acme", "acme*", "globex"]), max_size=2).map(tuple),
    privacy=st.lists(st.sampled_from(PRIVACY), max_size=2).map(tuple),
    priority=st.lists(st.sampled_from(PRIORITY), max_size=2).map(tuple),
    min_tokens=st.one_of(st.none(), st.sampled_from([0, 5, 50])),
    max_tokens=st.one_of(st.none(), st.sampled_from([5, 50, 1000])),
    metadata=st.lists(st.tuples(st.sampled_from(["team", "env"]), st.sampled_from(["ml-*", "prod", "*"])), max_size=2).map(
        lambda pairs: tuple(sorted(dict(pairs).items()))
    ),
)
specs = st.builds(
    TaskSpec,
    intent=st.sampled_from(INTENTS),
    tenant_id=st.sampled_from(TENANTS),
    privacy=st.sampled_from(PRIVACY),
    priority=st.sampled_from(PRIORITY),
    params=st.sampled_from([{}, {"input_tokens": 3}, {"input_tokens": 40}, {"prompt": "x" * 400}]),
    metadata=st.sampled_from([{}, {"team": "ml-core"}, {"team": "web", "env": "prod"}, {"env": "dev"}]),
)
CHOICE = Choice(route="hybrid", strategy="priority", candidates=())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(matches, max_size=8), st.lists(specs, min_size=1, max_size=20))
def test_the_index_agrees_with_the_ordered_scan(rule_matches, tasks):
    rules = tuple(Rule(name=f"r{i}", match=m, choice=CHOICE) for i, m in enumerate(rule_matches))
    policy = Policy(revision=1, sha256="", targets={}, rules=rules, default=CHOICE)
    for spec in [*tasks, *tasks]:  # the second pass answers from the memo
        assert select_rule(policy, spec)[0] == scan(rules, spec)


POLICY = """
version: 1
targets:
  - {name: local-a, kind: module, endpoint: "http://10.0.0.1:8080"}
rules:
  - name: ml-team
    match: {intent: "chat.*", metadata: {team: "ml-*"}}
    choice: {candidates: [local-a]}
  - name: long-chat
    match: {intent: "chat.*", input_tokens: {min: 100}}
    choice: {candidates: [local-a]}
  - name: any-chat
    match: {intent: "chat.*"}
    choice: {candidates: [local-a]}
default: {candidates: [local-a]}
"""


def test_the_same_key_with_other_metadata_or_tokens_gets_its_own_rule():
    policy = parse_policy(POLICY, revision=1)
    ml = TaskSpec(intent="chat.answer", tenant_id="acme", metadata={"team": "ml-core"})
    long = TaskSpec(intent="chat.answer", tenant_id="acme", params={"input_tokens": 500})
    short = TaskSpec(intent="chat.answer", tenant_id="acme", params={"input_tokens": 5})
    other = TaskSpec(intent="embed.text", tenant_id="acme")
    for _ in range(2):  # first answers fill the memo, the second round reads it
        assert select_rule(policy, ml)[0] == "rule:ml-team"
        assert select_rule(policy, long)[0] == "rule:long-chat"
        assert select_rule(policy, short)[0] == "rule:any-chat"
        assert select_rule(policy, other)[0] == "default"


def test_the_memo_is_bounded():
    policy = parse_policy(POLICY, revision=1)
    index: RuleIndex = policy.rule_index
    for i in range(RuleIndex.MAX_KEYS + 10):
        index.candidates(f"chat.{i}", "acme", "allow-api", "normal")
    assert len(index._memo) <= RuleIndex.MAX_KEYS
    assert [r.name for r in index.candidates("chat.x", "acme", "allow-api", "normal")] == ["ml-team", "long-chat", "any-chat"]
