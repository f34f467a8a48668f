#!/usr/bin/env python3
"""moto server plus the smallest patches that let the sluice Terraform stacks apply and re-plan clean.

Test tooling for `npm run verify:terraform` (verify/moto.ts starts it). Each patch bridges an emulator gap of
moto 5.2.1 — a missing API, a field moto drops or re-serialises, a wrong evaluation — and none changes what the
configuration deploys. Evidence (paths under site-packages/moto/, moto 5.2.1):

  G1  stepfunctions/responses.py has no validate_state_machine_definition / list_state_machine_versions, so
      core/responses.py answers 500 "has not been implemented"; the provider calls both on every plan/read.
  G2  awslambda/models.py get_configuration / update_configuration never keep LoggingConfig: perpetual diff.
  G3  s3/responses.py get_bucket_notification leaves out EventBridgeConfiguration: eventbridge false -> true.
  G4  s3/models.py set_lifecycle and s3/responses.py drop NoncurrentVersionExpiration.NewerNoncurrentVersions:
      the provider's waiter never matches and the bootstrap apply fails after 3 minutes.
  G5  s3/responses.py list_object_versions ignores encoding-type=url: force_destroy decodes "+" to " " and
      loops on BucketNotEmpty.
  G6  s3/models.py FakeDeleteMarker has no dispose(); deleting in a versioning-Suspended bucket calls it: 500.
  G7  sqs/models.py returns RedrivePolicy as json.dumps with spaces; AWS returns it compact: perpetual diff.
  G8  moto_api config ignores the "iam" key; AWS managed policies (ReadOnlyAccess, ...) need
      MOTO_IAM_LOAD_MANAGED_POLICIES (settings.py).
  G9  iam/policy_conditions.py has no "Bool" or "Arn*" operator and treats unknown operators as satisfied, and
      s3/models.py get_permission evaluates a bucket policy without the request's context: the TLS-only Deny
      applies to every request, TLS included, the results prefix's Deny-unless-aws:PrincipalArn to every writer,
      the worker's role included; a false condition also denies instead of not applying.
  G10 events/models.py: a rule with only a schedule matches every event, and a Lambda target raises
      NotImplementedError, which s3/notifications.py swallows, stopping delivery to the rules after it.
  G11 dynamodb/models/__init__.py transact_write_items applies a transaction's items one by one and undoes a
      cancelled one by restoring copies of the whole tables, while the threaded server runs other requests at the
      same time: a reader sees half a transaction, and a rollback erases another request's committed write.
      DynamoDB isolates transactions ("serializable" against other writes); here DynamoDB requests run one at a time.
  G12 servicequotas/models.py knows only the vpc service: GetServiceQuota for fargate (L-3032A538 On-Demand,
      L-36FBB829 Spot vCPU) answers NoSuchResource. Served here with the value MOTO_FARGATE_VCPU_QUOTA (default 6,
      a new account's), as an account's quota would be.
  G13 ec2/models/security_groups.py SecurityGroupRule keeps only the PrefixListId of a prefix-list rule and reads
      its description from ip_range, which such a rule does not have: the rule's Description is lost (perpetual diff).

Left as they are (sluice does not depend on them): execute_state_machine (a separate backend that cannot see
state machines Terraform created, and a second StartExecution fails); every S3 EventBridge event carries the same
id and sequencer and the key unencoded (s3/notifications.py); DynamoDB ignores ClientRequestToken.

  python3 moto_launcher.py [-H 127.0.0.1] [-p 4566] [-s | -c cert.pem -k key.pem]

Same arguments as `python3 -m moto.server`. MOTO_ACCOUNT_ID defaults to 111111111111.
MOTO_PATCHES_OFF=G3,G7 leaves those patches out (to show the gap each bridges).
"""
import json
import os
import sys

os.environ.setdefault("MOTO_ACCOUNT_ID", "111111111111")

from moto.core.config import default_user_config  # noqa: E402
from moto.core.responses import ActionResult  # noqa: E402

TLS = any(a in ("-s", "--ssl", "-c", "--ssl-cert") for a in sys.argv[1:])
PATCHES = {}


def patch(gap):
    def register(fn):
        PATCHES[gap] = fn
        return fn
    return register


def fix_result(cls, method, fix):
    """Wrap a response method so that fix(response, result) may edit its result dict before serialisation."""
    original = getattr(cls, method)

    def wrapper(self, *args, **kwargs):
        serialized = self.serialized  # moto makes one response object per request: no shared state

        def patched(action_result):
            if isinstance(action_result, ActionResult) and isinstance(action_result.result, dict):
                fix(self, action_result.result)
            return serialized(action_result)

        self.serialized = patched
        return original(self, *args, **kwargs)

    setattr(cls, method, wrapper)


@patch("G1")  # ValidateStateMachineDefinition, ListStateMachineVersions: not implemented (500)
def sfn_missing_actions():
    from moto.stepfunctions.responses import StepFunctionResponse as R

    def validate_state_machine_definition(self):
        return ActionResult({"result": "OK", "diagnostics": [], "truncated": False})

    def list_state_machine_versions(self):
        sm = self.stepfunction_backend.describe_state_machine(self._get_param("stateMachineArn"))
        return ActionResult({"stateMachineVersions": [
            {"stateMachineVersionArn": v.arn, "creationDate": v.creation_date}
            for v in sorted(sm.versions.values(), key=lambda v: -v.version)]})

    R.validate_state_machine_definition = validate_state_machine_definition
    R.list_state_machine_versions = list_state_machine_versions


@patch("G2")  # Lambda LoggingConfig: accepted, but neither stored nor returned
def lambda_logging_config():
    from moto.awslambda.models import LambdaFunction as F

    def logging_config(fn, cfg):
        cfg = {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{fn.function_name}", **(cfg or {})}
        if cfg["LogFormat"] == "JSON":  # AWS fills these in for the JSON format
            cfg = {"ApplicationLogLevel": "INFO", "SystemLogLevel": "INFO", **cfg}
        return cfg

    init, get, update = F.__init__, F.get_configuration, F.update_configuration

    def __init__(self, account_id, spec, *args, **kwargs):
        init(self, account_id, spec, *args, **kwargs)
        self.logging_config = logging_config(self, spec.get("LoggingConfig"))

    def get_configuration(self, *args, **kwargs):
        return {**get(self, *args, **kwargs), "LoggingConfig": self.logging_config}

    def update_configuration(self, updates):
        if "LoggingConfig" in updates:
            self.logging_config = logging_config(self, updates["LoggingConfig"])
        return update(self, updates)

    F.__init__, F.get_configuration, F.update_configuration = __init__, get_configuration, update_configuration


@patch("G3")  # S3 GetBucketNotificationConfiguration: EventBridgeConfiguration not returned
def s3_eventbridge_configuration():
    from moto.s3.responses import S3Response

    def fix(self, result):
        if self.backend.get_bucket_notification_configuration(self.bucket_name).event_bridge is not None:
            result["EventBridgeConfiguration"] = {}

    fix_result(S3Response, "get_bucket_notification", fix)


@patch("G4")  # S3 lifecycle: NoncurrentVersionExpiration.NewerNoncurrentVersions dropped
def s3_newer_noncurrent_versions():
    from moto.s3.models import FakeBucket
    from moto.s3.responses import S3Response

    set_lifecycle = FakeBucket.set_lifecycle

    def keep(self, rules):
        set_lifecycle(self, rules)
        for raw, rule in zip(rules, self.rules):  # one LifecycleRule per input rule, in order
            rule.nve_newer_versions = (raw.get("NoncurrentVersionExpiration") or {}).get("NewerNoncurrentVersions")

    def fix(self, result):
        for out, rule in zip(result["Rules"], self.backend.get_bucket(self.bucket_name).rules):
            if getattr(rule, "nve_newer_versions", None) and "NoncurrentVersionExpiration" in out:
                out["NoncurrentVersionExpiration"]["NewerNoncurrentVersions"] = int(rule.nve_newer_versions)

    FakeBucket.set_lifecycle = keep
    fix_result(S3Response, "get_bucket_lifecycle", fix)


@patch("G5")  # S3 ListObjectVersions ignores encoding-type=url: keys come back raw, and a client that
def s3_list_versions_url_encoding():  # URL-decodes them (force_destroy does) turns "+" into " " and loops
    from urllib.parse import quote

    from moto.s3.responses import S3Response

    def fix(self, result):
        if self.querystring.get("encoding-type", [None])[0] == "url":
            for entry in result.get("Versions", []) + result.get("DeleteMarkers", []):
                entry["Key"] = quote(entry["Key"])
            for entry in result.get("CommonPrefixes", []):
                entry["Prefix"] = quote(entry["Prefix"])
            if result.get("NextKeyMarker"):
                result["NextKeyMarker"] = quote(result["NextKeyMarker"])
            result["EncodingType"] = "url"

    fix_result(S3Response, "list_object_versions", fix)


@patch("G6")  # S3: deleting from a versioning-Suspended bucket pops the key's whole version list and
def s3_delete_marker_dispose():  # calls dispose() on each entry; a FakeDeleteMarker has none -> 500, forever
    from moto.s3.models import FakeDeleteMarker

    FakeDeleteMarker.dispose = lambda self, garbage=False: None  # a marker holds no buffer to close


@patch("G7")  # SQS RedrivePolicy: read back as json.dumps() with spaces; AWS returns it compact
def sqs_compact_redrive_policy():
    from moto.sqs.models import Queue

    attributes = Queue.attributes.fget

    def compact(self):
        result = attributes(self)
        if "RedrivePolicy" in result:
            result["RedrivePolicy"] = json.dumps(self.redrive_policy, separators=(",", ":"))
        return result

    Queue.attributes = property(compact)


@patch("G8")  # AWS managed policies: POST /moto-api/config ignores the "iam" key
def iam_managed_policies():
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"  # read when an account's IAM backend is made


@patch("G9")  # bucket policy: "Bool" and "Arn*" are ignored, and no request context is given to the conditions
def s3_policy_conditions():
    import threading
    from fnmatch import fnmatchcase

    from moto.iam import policy_conditions
    from moto.iam.access_control import IAMPolicy, IAMPolicyStatement, PermissionResult
    from moto.s3.models import FakeBucket
    from moto.s3.responses import S3Response
    from moto.sts.models import sts_backends

    def values(expected):
        return expected if isinstance(expected, list) else [expected]

    def bool_equals(expected, actual):
        return str(actual).lower() in [str(e).lower() for e in values(expected)]

    def arn_like(expected, actual):
        return any(fnmatchcase(actual, pattern) for pattern in values(expected))

    for name, operation in {
        "Bool": bool_equals,
        "ArnEquals": arn_like,  # AWS: ArnEquals and ArnLike behave alike (wildcards allowed in both)
        "ArnLike": arn_like,
        "ArnNotEquals": lambda expected, actual: not arn_like(expected, actual),
        "ArnNotLike": lambda expected, actual: not arn_like(expected, actual),
    }.items():
        policy_conditions.CONDITION_OPERATIONS.setdefault(name, operation)

    request = threading.local()  # the threaded server serves one request per thread
    setup_class = S3Response.setup_class

    def setup_with_caller(self, *args, **kwargs):
        setup_class(self, *args, **kwargs)
        request.principal_arn = principal_arn(self)

    def principal_arn(response):
        """aws:PrincipalArn: a role session's role, an IAM user, or (moto's default credentials) the account root."""
        account = response.current_account
        backend = sts_backends[account]["aws"]
        role = backend.get_assumed_role_from_access_key(response.get_access_key())
        if role:
            return role.role_arn
        _, arn, _ = backend.get_caller_identity(response.get_access_key(), response.region)
        return arn if ":user/" in arn and not arn.endswith(":user/moto") else f"arn:aws:iam::{account}:root"
    statement_permitted = IAMPolicyStatement.is_action_permitted

    def is_action_permitted(self, action, resource="*", principal=None, incoming_condition_values=None):
        if self._statement.get("Condition") and not self._check_conditions(incoming_condition_values):
            return PermissionResult.NEUTRAL  # a statement whose condition is false does not apply
        return statement_permitted(self, action, resource, principal, incoming_condition_values)

    def get_permission(self, action, resource):
        if self.policy is None:
            return PermissionResult.NEUTRAL
        context = {"aws:SecureTransport": "true" if TLS else "false"}  # this server speaks only one of them
        if getattr(request, "principal_arn", None):
            context["aws:PrincipalArn"] = request.principal_arn
        return IAMPolicy(self.policy.decode()).is_action_permitted(action, resource, None, context)

    S3Response.setup_class = setup_with_caller
    IAMPolicyStatement.is_action_permitted = is_action_permitted
    FakeBucket.get_permission = get_permission


@patch("G10")  # EventBridge: a schedule-only rule matches every event; a Lambda target raises
def events_delivery():  # NotImplementedError, which also stops delivery to the remaining rules/targets
    from moto.awslambda.utils import get_backend
    from moto.events.models import Rule
    from moto.utilities.arns import parse_arn

    send_to_targets = Rule.send_to_targets

    def send(self, event, transform_input=True):
        if not self.event_pattern.get_pattern():  # schedule-only rule: matches no event
            return
        lambdas = [t for t in self.targets if parse_arn(t["Arn"]).service == "lambda"]
        if lambdas and self.event_pattern.matches_event(event):
            for target in lambdas:  # asynchronous invoke, as EventBridge does; never fails the sender
                try:
                    get_backend(self.account_id, self.region_name).invoke(
                        target["Arn"], None, target.get("Input") or json.dumps(event),
                        {"x-amz-invocation-type": "Event"}, {})
                except Exception:  # noqa: BLE001
                    pass
        others = [t for t in self.targets if t not in lambdas]
        if others:  # moto's own delivery, to the targets it supports
            shadow = object.__new__(Rule)
            shadow.__dict__.update(self.__dict__, targets=others)
            send_to_targets(shadow, event, transform_input)

    Rule.send_to_targets = send


@patch("G11")  # DynamoDB: transactions neither isolated nor safe to roll back under concurrent requests
def dynamodb_one_request_at_a_time():
    import threading

    from moto.dynamodb.responses import DynamoHandler

    lock = threading.RLock()
    call_action = DynamoHandler.call_action

    def serialized(self):
        with lock:
            return call_action(self)

    DynamoHandler.call_action = serialized


@patch("G12")  # Service Quotas: only the vpc service is known; the Fargate vCPU quotas are not
def servicequotas_fargate():
    from moto.servicequotas.models import ServiceQuotasBackend

    get_service_quota = ServiceQuotasBackend.get_service_quota
    names = {"L-3032A538": "Fargate On-Demand vCPU resource count", "L-36FBB829": "Fargate Spot vCPU resource count"}

    def with_fargate(self, service_code, quota_code):
        if service_code == "fargate" and quota_code in names:
            return {
                "ServiceCode": "fargate",
                "ServiceName": "AWS Fargate",
                "QuotaArn": f"arn:aws:servicequotas:{self.region_name}:{self.account_id}:fargate/{quota_code}",
                "QuotaCode": quota_code,
                "QuotaName": names[quota_code],
                "Value": float(os.environ.get("MOTO_FARGATE_VCPU_QUOTA", "6")),
                "Unit": "None",
                "Adjustable": True,
                "GlobalQuota": False,
            }
        return get_service_quota(self, service_code, quota_code)

    ServiceQuotasBackend.get_service_quota = with_fargate


@patch("G13")  # EC2 security group rule to a prefix list: its Description is dropped
def ec2_prefix_list_rule_description():
    from moto.ec2.models.security_groups import SecurityGroupRule

    init = SecurityGroupRule.__init__
    description = SecurityGroupRule.description.fget

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        prefix_list = kwargs.get("prefix_list_id", args[7] if len(args) > 7 else None)
        self.prefix_list_description = (prefix_list or {}).get("Description")

    SecurityGroupRule.__init__ = __init__
    SecurityGroupRule.description = property(lambda self: description(self) or self.prefix_list_description)


if __name__ == "__main__":
    default_user_config["lambda"] = {"use_docker": False}  # no Docker here; set before the first request
    off = set(filter(None, os.environ.get("MOTO_PATCHES_OFF", "").split(",")))
    for gap, apply_patch in PATCHES.items():
        if gap not in off:
            apply_patch()
    print(f"moto_launcher: patches {[g for g in PATCHES if g not in off]} (TLS={TLS})", flush=True)

    from moto.server import main

    main(sys.argv[1:])
