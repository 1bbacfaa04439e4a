"""Run a plan across accounts: KMS stacks in parallel, RAM invitations, Core stacks in parallel.

Each phase first prepares a change set for every stack in it (in parallel), then asks once for the
whole phase, then executes them in parallel. A change set that would delete or replace a stateful
resource is refused unless the operator named it. When one account fails, the others finish what
they are doing; the next phase starts only when every stack it depends on is complete. Running
`deploy` again resumes: complete stacks are updated or left unchanged, nothing is regenerated.

`destroy` takes the Core stacks down, then the KMS stacks, after turning off the deletion
protection the templates switch on. Nothing here prints: progress goes to a callback, results
come back as values.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from tsm_infra.aws import Connector
from tsm_infra.errors import TsmInfraError, describe_error
from tsm_infra.plan import JoinedRefs, OutputRef, ParamValue, Plan, StackStep, stack_name
from tsm_infra.spec import Cluster, Node
from tsm_infra.stacks import Interrupted, Progress, Review, StackError, StackInfo, StackOps

Result = Literal[
    "created",
    "updated",
    "unchanged",
    "replaced",
    "resumed",
    "failed",
    "refused",
    "declined",
    "skipped",
    "deleted",
    "absent",
]
OK_RESULTS = frozenset(
    {"created", "updated", "unchanged", "replaced", "resumed", "deleted", "absent"}
)


@dataclass(frozen=True)
class Event:
    """Progress of one stack, for a live view: what it is doing, how far, for how long."""

    stack: str
    node: int
    account: str
    region: str
    status: str
    done: int = 0
    total: int = 0
    elapsed: float = 0.0


@dataclass(frozen=True)
class Outcome:
    """How one stack ended in this run."""

    stack: str
    kind: str
    node: int
    account: str
    region: str
    result: Result
    reason: str = ""
    changes: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the stack is where this run meant it to be."""
        return self.result in OK_RESULTS

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "stack": self.stack,
            "kind": self.kind,
            "node": self.node,
            "account": self.account,
            "region": self.region,
            "result": self.result,
            "reason": self.reason,
            "changes": list(self.changes),
            "seconds": round(self.seconds, 1),
        }


@dataclass
class RunResult:
    """Every stack's outcome and the other actions taken, in order."""

    command: str
    cluster: str
    outcomes: list[Outcome] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    retained: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every stack ended where it should."""
        return all(outcome.ok for outcome in self.outcomes)

    def failures(self) -> list[Outcome]:
        """The stacks that did not end where they should."""
        return [outcome for outcome in self.outcomes if not outcome.ok]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "command": self.command,
            "cluster": self.cluster,
            "ok": self.ok,
            "stacks": [outcome.to_dict() for outcome in self.outcomes],
            "actions": list(self.actions),
            "retained": list(self.retained),
            "seconds": round(self.seconds, 1),
        }


class Prompt(Protocol):
    """Asks the operator; returns True to go ahead."""

    def __call__(self, question: str, details: Sequence[str]) -> bool: ...


def always_yes(question: str, details: Sequence[str]) -> bool:
    """The prompt of `--yes`."""
    return True


@dataclass(frozen=True)
class Options:
    """How a run behaves, from the command line."""

    allow_replace: frozenset[str] = frozenset()
    poll_interval: float = 5.0
    timeout: float = 3 * 3600.0


RESUME_ADVICE = (
    "stopped waiting; CloudFormation goes on with what it had started{busy}. Nothing was "
    "damaged: run the same command again to resume."
)


class DeployError(TsmInfraError):
    """The run could not start or go on (the outcomes say which stacks were touched)."""


# --------------------------------------------------------------------------- the runner


@dataclass
class _Work:
    """One stack of a phase while it is prepared and executed."""

    step: StackStep
    node: Node
    parameters: dict[str, str]
    stack_ops: StackOps | None = None
    info: StackInfo | None = None
    review: Review | None = None
    replace: bool = False
    resume: bool = False
    outcome: Outcome | None = None
    started: float = 0.0


class Runner:
    """Runs deploy and destroy for one cluster with one connector; safe to interrupt."""

    def __init__(
        self,
        cluster: Cluster,
        connector: Connector,
        *,
        prompt: Prompt = always_yes,
        report: Callable[[Event], None] | None = None,
        options: Options | None = None,
        template_body: Callable[[str], str] | None = None,
    ) -> None:
        self.cluster = cluster
        self.connector = connector
        self.prompt = prompt
        self.report = report or (lambda event: None)
        self.options = options or Options()
        if template_body is None:
            from tsm_infra.templates import template_body as real_body  # noqa: PLC0415

            template_body = real_body
        self._template_body = template_body
        self._bodies: dict[str, str] = {}
        self._stop = threading.Event()
        self._nodes = {node.index: node for node in cluster.nodes}
        self._lifted: list[str] = []  # deletion protection turned off during destroy

    # ------------------------------------------------------------------ plumbing

    def _body(self, kind: str) -> str:
        if kind not in self._bodies:
            self._bodies[kind] = self._template_body(kind)
        return self._bodies[kind]

    def _sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise Interrupted("interrupted")

    def _ops(self, work: _Work) -> StackOps:
        """The stack operations of a work item, opening its account's session on first use.

        Called in the item's own thread, so that an account that cannot be reached fails its
        stacks only, not the run.
        """
        if work.stack_ops is None:
            cfn = self.connector.for_node(work.node).client("cloudformation")
            work.stack_ops = StackOps(
                cfn,
                poll_interval=self.options.poll_interval,
                timeout=self.options.timeout,
                sleep=self._sleep,
            )
        return work.stack_ops

    def _emit(self, work: _Work, status: str, progress: Progress | None = None) -> None:
        self.report(
            Event(
                stack=work.step.stack_name,
                node=work.node.index,
                account=work.node.account,
                region=work.node.region,
                status=status,
                done=progress.done if progress else 0,
                total=progress.total if progress else 0,
                elapsed=time.monotonic() - work.started if work.started else 0.0,
            )
        )

    def _outcome(self, work: _Work, result: Result, reason: str = "") -> Outcome:
        changes = tuple(c.describe() for c in work.review.changes) if work.review else ()
        outcome = Outcome(
            stack=work.step.stack_name,
            kind=work.step.kind,
            node=work.node.index,
            account=work.node.account,
            region=work.node.region,
            result=result,
            reason=" ".join(reason.split()),
            changes=changes,
            seconds=time.monotonic() - work.started if work.started else 0.0,
        )
        work.outcome = outcome
        self._emit(work, result)
        return outcome

    def _skip(self, works: Sequence[_Work], reason: str) -> list[Outcome]:
        """Outcomes of work that will not run because something before it did not complete."""
        return [self._outcome(work, "skipped", reason) for work in works]

    def _parallel(self, works: Sequence[_Work], job: Callable[[_Work], None]) -> None:
        """Run job on every work item at once; Ctrl-C stops the waiting, not CloudFormation."""

        def guarded(work: _Work) -> None:
            work.started = work.started or time.monotonic()
            try:
                job(work)
            except Interrupted:
                if work.outcome is None:
                    self._outcome(work, "failed", "interrupted while waiting")
            except TsmInfraError as exc:
                self._outcome(work, "failed", str(exc).removeprefix(f"{work.step.stack_name}: "))

        if not works:
            return
        with ThreadPoolExecutor(max_workers=len(works), thread_name_prefix="tsm-deploy") as pool:
            futures = [pool.submit(guarded, work) for work in works]
            try:
                while not all(future.done() for future in futures):
                    time.sleep(0.05)
            except KeyboardInterrupt:
                self._stop.set()
                for future in futures:
                    future.result()
                busy = [
                    w.step.stack_name
                    for w in works
                    if w.outcome and "interrupt" in w.outcome.reason
                ]
                raise Interrupted(
                    RESUME_ADVICE.format(busy=f" ({', '.join(busy)})" if busy else "")
                ) from None
            for future in futures:
                future.result()

    # ------------------------------------------------------------------ deploy

    def deploy(self, plan: Plan) -> RunResult:
        """Deploy every phase of the plan; the result says how each stack ended."""
        try:
            return self._deploy(plan)
        except KeyboardInterrupt:  # between the phases' own handling of it
            self._stop.set()
            raise Interrupted(RESUME_ADVICE.format(busy="")) from None

    def _deploy(self, plan: Plan) -> RunResult:
        started = time.monotonic()
        result = RunResult("deploy", self.cluster.name)
        outputs: dict[str, dict[str, str]] = {}
        unshared: dict[str, str] = {}  # account -> why its peers' shares are not accepted
        for phase in plan.phases:
            if phase.name == "share":
                done, unshared = self._accept_invitations()
                result.actions += done
                continue
            blocked = [o.stack for o in result.outcomes if not o.ok]
            works = [self._work(step, None if blocked else outputs) for step in phase.steps]
            if blocked:
                result.outcomes += self._skip(
                    works, f"needs {', '.join(blocked)}, which did not complete"
                )
                continue
            for work in [w for w in works if w.node.account in unshared]:
                works.remove(work)
                result.outcomes.append(self._outcome(work, "skipped", unshared[work.node.account]))
            declined = self._run_phase(phase.name, works)
            result.outcomes += [work.outcome for work in works if work.outcome]
            for work in works:
                if work.outcome and work.outcome.ok and work.info is not None:
                    outputs[work.step.stack_name] = work.info.outputs
            if declined:
                break
        result.seconds = time.monotonic() - started
        return result

    def _work(self, step: StackStep, outputs: Mapping[str, Mapping[str, str]] | None) -> _Work:
        """A stack's work item; parameters resolved unless `outputs` is None (it will not run)."""
        node = self._nodes[step.node_index]
        parameters = (
            {name: _resolve(value, outputs) for name, value in step.parameters.items()}
            if outputs is not None
            else {}
        )
        return _Work(step, node, parameters)

    def _tags(self, work: _Work) -> dict[str, str]:
        return {
            "tsm:cluster": self.cluster.name,
            "tsm:node": str(work.node.index),
            "tsm:nodes": str(len(self.cluster.nodes)),
            "tsm:threshold": str(self.cluster.threshold),
            "tsm:managed-by": "tsm-infra",
        }

    def _prepare(self, work: _Work) -> None:
        self._emit(work, "checking")
        info = self._ops(work).describe(work.step.stack_name)
        if info is not None and info.state == "in_progress":
            self._emit(work, f"waiting for {info.status}")
            info = self._ops(work).settle(
                work.step.stack_name, lambda p: self._emit(work, p.status, p)
            )
        work.info = info
        state = info.state if info else "absent"
        if state == "failed":
            self._outcome(
                work,
                "failed",
                f"the stack is {info.status if info else ''} and cannot be updated: "
                f"{info.reason if info else ''}; repair it in the CloudFormation console "
                "(e.g. continue the rollback), then deploy again",
            )
            return
        if state == "rollback_complete":
            work.replace = True
            self._emit(work, "needs replacing")
            return
        if state == "absent" and work.step.kind == "kms" and self._secrets_left_over(work):
            return
        if state == "review" and info is not None:
            # an earlier create was never executed (declined or interrupted): the stack holds
            # no resources, only change sets; start again from nothing
            self._ops(work).delete(info.name)
            state = "absent"
        self._emit(
            work, "resuming: creating change set" if state == "resumable" else "creating change set"
        )
        work.review = self._ops(work).prepare(
            work.step.stack_name,
            self._body(work.step.kind),
            work.parameters,
            self._tags(work),
            create=state == "absent",
        )
        if work.review.empty:
            if state == "resumable" and info is not None:
                reason = self._ops(work).first_failure(info.name, info.stack_id) or info.reason
                self._outcome(
                    work,
                    "failed",
                    f"still {info.status} and the change set finds nothing to retry: {reason}",
                )
                return
            self._outcome(work, "unchanged")
            return
        work.resume = state == "resumable"
        refused = work.review.refused(self.options.allow_replace)
        if refused:
            self._ops(work).discard(work.review)
            names = " ".join(change.logical_id for change in refused)
            self._outcome(
                work,
                "refused",
                "the change set would "
                + "; ".join(change.describe() for change in refused)
                + f", which holds state that cannot be made again; rerun with "
                f"--allow-replace {names} if that is really meant",
            )
            return
        self._emit(work, "change set ready")

    def _secrets_left_over(self, work: _Work) -> bool:
        """Fail a new KMS stack whose secret names an earlier deployment still holds.

        destroy keeps the secrets (they are the node's identity and its database's key), and
        CloudFormation cannot create a secret whose name is taken: say so before it tries.
        """
        from tsm_infra.preflight import leftover_advice, leftover_secrets  # noqa: PLC0415

        try:
            taken = leftover_secrets(
                self.connector.for_node(work.node), self.cluster.name, work.node
            )
        except Exception:  # a check, not a step: CloudFormation will say it in its own words
            return False
        if not taken:
            return False
        self._outcome(work, "failed", "; ".join(leftover_advice(taken)))
        return True

    def _run_phase(self, phase: str, works: list[_Work]) -> bool:
        """Prepare, ask, execute; True when the operator declined."""
        self._parallel(works, self._prepare)
        pending = [w for w in works if w.outcome is None]
        if not pending:
            return False
        details = []
        for work in pending:
            where = f"{work.step.stack_name} (account {work.node.account}, {work.node.region})"
            if work.replace:
                details.append(
                    f"{where}: delete the stack left in ROLLBACK_COMPLETE by a failed first "
                    "create, and create it again"
                )
                continue
            assert work.review is not None  # noqa: S101 - set by _prepare for pending work
            verb = (
                "create"
                if work.review.create
                else "resume the failed operation"
                if work.resume
                else "update"
            )
            details.append(f"{where}: {verb}, {len(work.review.changes)} change(s)")
            details += [f"    {change.describe()}" for change in work.review.changes]
        count = f"{len(pending)} stack{'s' if len(pending) != 1 else ''}"
        if not self.prompt(f"Execute the {phase} phase's changes to {count}?", details):
            for work in pending:
                if work.review is not None:
                    self._ops(work).discard(work.review)
                self._outcome(work, "declined", "not confirmed; nothing was changed")
            return True
        self._parallel(pending, self._execute)
        return False

    def _execute(self, work: _Work) -> None:
        name = work.step.stack_name

        def progress(update: Progress) -> None:
            self._emit(work, update.status, update)

        if work.replace:
            self._ops(work).delete(name, progress)
            work.review = self._ops(work).prepare(
                name, self._body(work.step.kind), work.parameters, self._tags(work), create=True
            )
        assert work.review is not None  # noqa: S101 - prepared above or in _prepare
        work.info = self._ops(work).execute(work.review, progress)
        if work.replace:
            self._outcome(work, "replaced")
        elif work.resume:
            self._outcome(work, "resumed")
        else:
            self._outcome(work, "created" if work.review.create else "updated")

    # ------------------------------------------------------------------ RAM invitations

    def _accept_invitations(self) -> tuple[list[str], dict[str, str]]:
        """Accept the peers' pending share invitations in every node account.

        Returns what was done, and for each account where it could not be done, why. RAM is
        regional: a share, and so its invitation, lives in the region of the stack that made it,
        so each account looks in every region its peers deploy to.
        """
        names = re.compile(rf"tsm-{re.escape(self.cluster.name)}-node\d+-public")
        accounts = {node.account for node in self.cluster.nodes}
        done: list[str] = []
        failed: dict[str, str] = {}
        for node in _one_node_per_account(self.cluster.nodes):
            regions = sorted({p.region for p in self.cluster.nodes if p.account != node.account})
            try:
                for region in regions:
                    done += self._accept_in(node, region, names, accounts)
            except TsmInfraError as exc:
                failed[node.account] = f"the peers' shares are not accepted: {exc}"
        return done, failed

    def _accept_in(
        self, node: Node, region: str, names: re.Pattern[str], accounts: set[str]
    ) -> list[str]:
        ram = self.connector.for_node(node).client("ram", region)
        try:
            pages = ram.get_paginator("get_resource_share_invitations").paginate()
            invitations = [i for page in pages for i in page["resourceShareInvitations"]]
        except Exception as exc:
            raise DeployError(
                f"account {node.account} ({region}): cannot list RAM invitations: "
                f"{describe_error(exc)}; the deploying role needs "
                "ram:GetResourceShareInvitations and ram:AcceptResourceShareInvitation"
            ) from None
        done = []
        for invitation in invitations:
            if (
                invitation.get("status") != "PENDING"
                or invitation.get("senderAccountId") not in accounts
                or not names.fullmatch(str(invitation.get("resourceShareName", "")))
            ):
                continue
            ram.accept_resource_share_invitation(
                resourceShareInvitationArn=invitation["resourceShareInvitationArn"]
            )
            done.append(
                f"account {node.account} accepted {invitation['resourceShareName']} from "
                f"{invitation['senderAccountId']} ({region})"
            )
        return done

    # ------------------------------------------------------------------ destroy

    def destroy(self) -> RunResult:
        """Delete the Core stacks, then the KMS stacks; say what AWS keeps."""
        try:
            return self._destroy()
        except KeyboardInterrupt:
            self._stop.set()
            raise Interrupted(RESUME_ADVICE.format(busy="")) from None

    def _destroy(self) -> RunResult:
        started = time.monotonic()
        result = RunResult("destroy", self.cluster.name)
        deleted: dict[tuple[int, str], StackInfo] = {}
        for kind in ("core", "kms"):
            works = [_Work(self._destroy_step(node, kind), node, {}) for node in self.cluster.nodes]
            blocked = [o.stack for o in result.outcomes if not o.ok]
            if blocked:
                result.outcomes += self._skip(works, f"{', '.join(blocked)} must be deleted first")
                continue
            self._parallel(works, self._delete)
            result.outcomes += [work.outcome for work in works if work.outcome]
            result.actions += self._lifted
            self._lifted = []
            deleted.update({(w.node.index, kind): w.info for w in works if w.info is not None})
        for node in self.cluster.nodes:
            kms, core = deleted.get((node.index, "kms")), deleted.get((node.index, "core"))
            result.retained += _retained(self.cluster.name, node, kms, core)
        result.seconds = time.monotonic() - started
        return result

    def _destroy_step(self, node: Node, kind: Literal["kms", "core"]) -> StackStep:
        return StackStep(
            kind=kind,
            node_index=node.index,
            account=node.account,
            region=node.region,
            access="",
            stack_name=stack_name(self.cluster.name, node.index, kind),
            template=f"templates/{kind}.yaml",
            parameters={},
        )

    def _delete(self, work: _Work) -> None:
        name = work.step.stack_name

        def progress(update: Progress) -> None:
            self._emit(work, update.status, update)

        info = work.info = self._ops(work).describe(name)
        if info is None:
            self._outcome(work, "absent")
            return
        if work.step.kind == "core":
            self._lift_deletion_protection(work, info)
        self._ops(work).delete(name, progress)
        self._outcome(work, "deleted")

    def _lift_deletion_protection(self, work: _Work, info: StackInfo) -> None:
        """Turn protection off on the stack's database and load balancer themselves.

        Whatever state the stack is in (a failed create leaves both protected), and never
        through a stack update, which would re-resolve the AMI parameter and replace the node.
        """
        from tsm_infra.protection import lift_deletion_protection  # noqa: PLC0415

        self._emit(work, "lifting deletion protection")
        self._lifted += lift_deletion_protection(
            self.connector.for_node(work.node),
            info.name,
            self._sleep,
            self.options.poll_interval,
        )


DATABASE = "Database"


def _retained(cluster: str, node: Node, kms: StackInfo | None, core: StackInfo | None) -> list[str]:
    """What AWS keeps of a destroyed node, named by what its stacks output before deletion."""
    kept = []
    out = kms.outputs if kms is not None else {}
    if out.get("KmsKeyArn"):
        kept.append(
            f"KMS key {out['KmsKeyArn']}: its alias went with the stack; schedule the key's "
            "deletion yourself once nothing needs it (KMS then waits out the deletion window)"
        )
    kept += [f"secret {value}" for key, value in sorted(out.items()) if key.endswith("SecretArn")]
    if core is not None and core.outputs.get("DatabaseInstanceId"):
        kept.append(f"final snapshot of database {core.outputs['DatabaseInstanceId']}")
    if kms is not None or core is not None:
        kept.append(f"log groups under /tsm/{cluster}/node{node.index}/")
    where = f"nodes[{node.index}] (account {node.account}, {node.region})"
    return [f"{where}: {item}" for item in kept]


def check_destroy(cluster: Cluster, connector: Connector, *, allow_data_loss: bool) -> list[str]:
    """What destroy would do, per stack; DeployError when it would lose the key shares.

    The key shares live in each node's database: destroy goes ahead only when every deployed
    Core template keeps a final snapshot of it (DeletionPolicy Snapshot), or when the operator
    said they understand the loss.
    """
    import json  # noqa: PLC0415

    import yaml  # noqa: PLC0415

    details: list[str] = []
    losing: list[str] = []
    for node in cluster.nodes:
        cfn = connector.for_node(node).client("cloudformation")
        ops = StackOps(cfn)
        core = ops.describe(stack_name(cluster.name, node.index, "core"))
        kms = ops.describe(stack_name(cluster.name, node.index, "kms"))
        if core is not None:
            body = cfn.get_template(StackName=core.stack_id or core.name)["TemplateBody"]
            template = body if isinstance(body, dict) else _load_template(body, json, yaml)
            database = (template.get("Resources") or {}).get(DATABASE) or {}
            policy = database.get("DeletionPolicy", "Delete") if database else "none"
            if policy == "Snapshot":
                details.append(f"{core.name}: delete; a final snapshot of the database is kept")
            elif database:
                losing.append(f"{core.name} (DeletionPolicy {policy})")
                details.append(f"{core.name}: delete; the database is DELETED without snapshot")
            else:
                details.append(f"{core.name}: delete (it has no database)")
        if kms is not None:
            details.append(
                f"{kms.name}: delete; the KMS key and the secrets are retained, the egress "
                "addresses released"
            )
    if losing and not allow_data_loss:
        raise DeployError(
            "refusing to destroy: no final snapshot of the key-share database would be taken for "
            + ", ".join(losing)
            + "; the key shares would be lost for good. Deploy the current templates first "
            "(they keep a snapshot), or pass --i-understand-data-loss"
        )
    return details


def _load_template(body: str, json: Any, yaml: Any) -> dict[str, Any]:
    try:
        loaded = json.loads(body)
    except ValueError:
        from tsm_infra.templates import _read_template_yaml  # noqa: PLC0415

        loaded = _read_template_yaml(body)
    return loaded if isinstance(loaded, dict) else {}


def _one_node_per_account(nodes: Iterable[Node]) -> list[Node]:
    seen: dict[str, Node] = {}
    for node in nodes:
        seen.setdefault(node.account, node)
    return list(seen.values())


def _resolve(value: ParamValue, outputs: Mapping[str, Mapping[str, str]]) -> str:
    """A parameter value with every output reference replaced by the deployed output."""
    if isinstance(value, str):
        return value
    refs: tuple[OutputRef, ...] = value.refs if isinstance(value, JoinedRefs) else (value,)
    found = []
    for ref in refs:
        stack_outputs = outputs.get(ref.stack)
        if stack_outputs is None or ref.output not in stack_outputs:
            raise DeployError(
                f"{ref.stack} has no output {ref.output}; deploy it first (it may have failed)"
            )
        found.append(stack_outputs[ref.output])
    return ",".join(found)


__all__ = [
    "DeployError",
    "Event",
    "Options",
    "Outcome",
    "Prompt",
    "RunResult",
    "Runner",
    "StackError",
    "always_yes",
    "check_destroy",
]
