"""The deployment files: the CloudFormation templates lint clean and keep the protections the image
bucket and the database must have; the compose file and the image ask for their secrets instead of
carrying them, and hand the server settings it accepts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.api import ManualArgs, lint_file

import storage
from referral.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
TEMPLATES = sorted((INFRA / "aws").glob("*.yaml"))
SECRET_VARIABLES = ("SECRET_KEY", "POSTGRES_PASSWORD", "AWS_SECRET_ACCESS_KEY", "MINIO_ROOT_PASSWORD")


class CloudFormationLoader(yaml.SafeLoader):
    """A safe loader that reads the short forms (!Ref, !Sub, !GetAtt, ...) as their long forms."""


def _short_form(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


CloudFormationLoader.add_multi_constructor("!", _short_form)


def load_template(name: str) -> dict[str, Any]:
    return yaml.load((INFRA / "aws" / name).read_text(), Loader=CloudFormationLoader)  # noqa: S506


def resources_of_type(template: dict[str, Any], type_name: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == type_name}


def refers_to(value: Any, logical_id: str) -> bool:
    """``value`` is a Ref to, or a GetAtt of the Arn of, ``logical_id``."""
    return value in ({"Ref": logical_id}, {"Fn::GetAtt": [logical_id, "Arn"]})


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# -- every template ----------------------------------------------------------------------------

def test_the_storage_database_and_app_templates_are_there():
    assert {path.name for path in TEMPLATES} >= {"storage.yaml", "database.yaml", "app.yaml"}


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda path: path.name)
def test_template_passes_cfn_lint_without_a_finding(path: Path):
    matches = lint_file(path, config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
    assert not matches, "\n".join(str(match) for match in matches)


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda path: path.name)
def test_template_has_no_secret_default_and_no_account_id(path: Path):
    template = yaml.load(path.read_text(), Loader=CloudFormationLoader)  # noqa: S506
    for name, parameter in template.get("Parameters", {}).items():
        if parameter.get("NoEcho"):
            assert "Default" not in parameter, f"{name} is NoEcho and has a default"
        if re.search(r"password|secret|token|credential", name, re.IGNORECASE) and not name.endswith("Arn"):
            assert not parameter.get("Default"), f"{name} has a default value"
    text = path.read_text()
    assert not re.search(r"(?<![\d{])\d{12}(?!\d)", text), "an AWS account id is written into the template"
    assert not re.search(r"\bA[KS]IA[0-9A-Z]{16}\b", text), "an access key id is written into the template"
    for rds in resources_of_type(template, "AWS::RDS::DBInstance").values():
        password = rds["Properties"].get("MasterUserPassword")
        if password is not None:
            assert "{{resolve:secretsmanager:" in str(password), "the master password is not from Secrets Manager"


# -- image bucket --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def storage_template() -> dict[str, Any]:
    return load_template("storage.yaml")


@pytest.fixture(scope="module")
def image_bucket(storage_template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    # The bucket the stack hands to the app, whatever its logical name.
    logical_id = storage_template["Outputs"]["BucketName"]["Value"]["Ref"]
    bucket = storage_template["Resources"][logical_id]
    assert bucket["Type"] == "AWS::S3::Bucket"
    return logical_id, bucket["Properties"]


@pytest.fixture(scope="module")
def bucket_key(storage_template: dict[str, Any], image_bucket: tuple[str, dict[str, Any]]) -> str:
    _, bucket = image_bucket
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    key_ref = rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]
    keys = [name for name in resources_of_type(storage_template, "AWS::KMS::Key") if refers_to(key_ref, name)]
    assert keys, f"KMSMasterKeyID {key_ref} is not a customer-managed key of this template"
    return keys[0]


@pytest.fixture(scope="module")
def bucket_policy_statements(storage_template: dict[str, Any], image_bucket: tuple[str, dict[str, Any]]
                             ) -> list[dict[str, Any]]:
    logical_id, _ = image_bucket
    policies = [p for p in resources_of_type(storage_template, "AWS::S3::BucketPolicy").values()
                if p["Properties"]["Bucket"] == {"Ref": logical_id}]
    assert len(policies) == 1
    return list(policies[0]["Properties"]["PolicyDocument"]["Statement"])


def test_bucket_blocks_every_kind_of_public_access(image_bucket: tuple[str, dict[str, Any]]):
    _, bucket = image_bucket
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
    }
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]


def test_bucket_encrypts_with_a_rotated_customer_managed_key_and_a_bucket_key(
        storage_template: dict[str, Any], image_bucket: tuple[str, dict[str, Any]], bucket_key: str):
    _, bucket = image_bucket
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert rule["BucketKeyEnabled"] is True
    key = storage_template["Resources"][bucket_key]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"
    assert refers_to(storage_template["Outputs"]["KmsKeyArn"]["Value"], bucket_key)


def test_bucket_is_versioned_and_cleans_up_parts_and_old_versions(
        storage_template: dict[str, Any], image_bucket: tuple[str, dict[str, Any]]):
    _, bucket = image_bucket
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    rules = [rule for rule in bucket["LifecycleConfiguration"]["Rules"] if rule["Status"] == "Enabled"]
    assert any(rule.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") == 1 for rule in rules)
    (expiring,) = [rule for rule in rules if "NoncurrentVersionExpiration" in rule]
    # The retention period is the operator's choice, with a sane default.
    parameter = expiring["NoncurrentVersionExpiration"]["NoncurrentDays"]["Ref"]
    assert storage_template["Parameters"][parameter]["Default"] >= 30
    assert storage_template["Parameters"][parameter]["MinValue"] >= 1


def _denies(statement: dict[str, Any], action: str) -> bool:
    return (statement["Effect"] == "Deny" and statement["Principal"] == "*"
            and action in as_list(statement["Action"]))


def test_bucket_policy_refuses_requests_without_tls(bucket_policy_statements: list[dict[str, Any]],
                                                   image_bucket: tuple[str, dict[str, Any]]):
    logical_id, _ = image_bucket
    insecure = [s for s in bucket_policy_statements if _denies(s, "s3:*")
                and str(s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")).lower() == "false"]
    assert len(insecure) == 1
    resources = as_list(insecure[0]["Resource"])
    assert {"Fn::GetAtt": [logical_id, "Arn"]} in resources
    assert {"Fn::Sub": f"${{{logical_id}.Arn}}/*"} in resources


def test_bucket_policy_refuses_puts_not_encrypted_with_the_bucket_key(
        bucket_policy_statements: list[dict[str, Any]], bucket_key: str):
    puts = [s for s in bucket_policy_statements if _denies(s, "s3:PutObject")]
    conditions = [s["Condition"] for s in puts]
    # No header at all: refused, not left to the bucket default.
    assert {"Null": {"s3:x-amz-server-side-encryption": "true"}} in conditions
    # Any other algorithm (AES256, DSSE): refused.
    assert {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}} in conditions
    # Another KMS key, or none named: refused.
    key_conditions = [c["StringNotEquals"]["s3:x-amz-server-side-encryption-aws-kms-key-id"] for c in conditions
                      if "s3:x-amz-server-side-encryption-aws-kms-key-id" in c.get("StringNotEquals", {})]
    assert len(key_conditions) == 1
    assert refers_to(key_conditions[0], bucket_key)


def test_the_app_sends_the_encryption_headers_the_bucket_policy_demands():
    """The bucket refuses puts without SSE-KMS and its key, so every task's STORAGE_URL must make the
    server send both; read back through the real storage URL parser."""
    app = load_template("app.yaml")
    urls = []
    for task in resources_of_type(app, "AWS::ECS::TaskDefinition").values():
        for container in task["Properties"]["ContainerDefinitions"]:
            for variable in container.get("Environment", []):
                if isinstance(variable, dict) and variable.get("Name") == "STORAGE_URL":
                    urls.append(variable["Value"]["Fn::Sub"])
    assert len(urls) == 4  # app, worker, DICOM listener, migrate
    key_arn = "arn:aws:kms:us-east-1:000000000000:key/00000000-0000-0000-0000-000000000000"
    for url in urls:
        concrete = (url.replace("${BucketName}", "referral-images").replace("${KmsKeyArn}", key_arn)
                    .replace("${AWS::Region}", "us-east-1"))
        store = storage.from_url(concrete)
        try:
            assert isinstance(store, storage.S3Storage)
            assert (store.sse, store.kms_key_id) == ("aws:kms", key_arn)
        finally:
            store.close()


# -- database ------------------------------------------------------------------------------------

def test_database_is_encrypted_multi_az_backed_up_private_and_protected():
    template = load_template("database.yaml")
    (instance,) = resources_of_type(template, "AWS::RDS::DBInstance").values()
    properties = instance["Properties"]
    assert properties["Engine"] == "postgres"
    versions = template["Parameters"][properties["EngineVersion"]["Ref"]]["AllowedValues"]
    assert set(versions) <= {"15", "16"}
    assert properties["StorageEncrypted"] is True
    assert properties["MultiAZ"] is True
    assert properties["PubliclyAccessible"] is False
    assert properties["DeletionProtection"] is True
    assert instance["DeletionPolicy"] == "Snapshot"
    retention = template["Parameters"][properties["BackupRetentionPeriod"]["Ref"]]
    assert retention["MinValue"] >= 7
    assert retention["Default"] >= 7
    assert (properties.get("ManageMasterUserPassword") is True
            or "{{resolve:secretsmanager:" in str(properties["MasterUserPassword"]))
    # TLS required on the server side.
    (parameters,) = resources_of_type(template, "AWS::RDS::DBParameterGroup").values()
    assert parameters["Properties"]["Parameters"]["rds.force_ssl"] == "1"


# -- app -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def app_template() -> dict[str, Any]:
    return load_template("app.yaml")


def test_every_task_gets_its_secrets_from_secrets_manager_and_never_in_plain_environment(
        app_template: dict[str, Any]):
    containers = [c for task in resources_of_type(app_template, "AWS::ECS::TaskDefinition").values()
                  for c in task["Properties"]["ContainerDefinitions"]]
    assert len(containers) == 4
    for container in containers:
        secrets = {s["Name"] for s in container["Secrets"] if isinstance(s, dict) and "Name" in s}
        assert {"SECRET_KEY", "DATABASE_PASSWORD"} <= secrets
        plain = {v["Name"] for v in container["Environment"] if isinstance(v, dict) and "Name" in v}
        assert not plain & {"SECRET_KEY", "DATABASE_PASSWORD", "DATABASE_URL", "AWS_SECRET_ACCESS_KEY"}
        assert {"Name": "APP_ENV", "Value": "production"} in container["Environment"]


def test_load_balancer_serves_https_redirects_http_and_checks_readiness(app_template: dict[str, Any]):
    listeners = [r["Properties"] for r in resources_of_type(app_template, "AWS::ElasticLoadBalancingV2::Listener")
                 .values()]
    (https,) = [listener for listener in listeners if listener["Protocol"] == "HTTPS"]
    assert https["Port"] == 443
    assert https["Certificates"] == [{"CertificateArn": {"Ref": "CertificateArn"}}]
    (http,) = [listener for listener in listeners if listener["Protocol"] == "HTTP"]
    (redirect,) = http["DefaultActions"]
    assert redirect["Type"] == "redirect"
    assert redirect["RedirectConfig"]["Protocol"] == "HTTPS"
    assert redirect["RedirectConfig"]["StatusCode"] == "HTTP_301"
    (target_group,) = [group for group in resources_of_type(app_template, "AWS::ElasticLoadBalancingV2::TargetGroup")
                       .values() if group["Properties"]["Protocol"] == "HTTP"]
    assert target_group["Properties"]["HealthCheckPath"] == "/readyz"


def test_the_dicom_listener_runs_behind_a_tls_network_load_balancer_keeping_client_addresses(
        app_template: dict[str, Any]):
    (service,) = [s["Properties"] for name, s in resources_of_type(app_template, "AWS::ECS::Service").items()
                  if name.startswith("Dicom")]
    (task,) = [t["Properties"] for t in resources_of_type(app_template, "AWS::ECS::TaskDefinition").values()
               if t["Properties"]["ContainerDefinitions"][0]["Name"] == "dicom-listener"]
    assert "flask --app wsgi dicom-listener" in task["ContainerDefinitions"][0]["Command"][-1]
    (listener,) = [r["Properties"] for r in resources_of_type(app_template, "AWS::ElasticLoadBalancingV2::Listener")
                   .values() if r["Properties"]["Protocol"] == "TLS"]
    assert listener["Port"] == 2762
    assert listener["SslPolicy"].startswith("ELBSecurityPolicy-TLS13")
    (group,) = [g["Properties"] for g in resources_of_type(app_template, "AWS::ElasticLoadBalancingV2::TargetGroup")
                .values() if g["Properties"]["Protocol"] == "TCP"]
    assert {"Key": "preserve_client_ip.enabled", "Value": "true"} in group["TargetGroupAttributes"]
    assert service["LoadBalancers"][0]["ContainerPort"] == 11112


def test_log_groups_expire_after_the_retention_parameter(app_template: dict[str, Any]):
    groups = resources_of_type(app_template, "AWS::Logs::LogGroup").values()
    assert groups
    assert all(group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"} for group in groups)


def test_only_the_load_balancer_reaches_the_tasks_and_only_the_tasks_reach_the_database(
        app_template: dict[str, Any]):
    task_group = next(name for name, r in resources_of_type(app_template, "AWS::EC2::SecurityGroup").items()
                      if any(refers_to(g, name) for s in resources_of_type(app_template, "AWS::ECS::Service").values()
                             for g in s["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["SecurityGroups"]))
    assert "SecurityGroupIngress" not in app_template["Resources"][task_group]["Properties"]
    ingress = [r["Properties"] for r in resources_of_type(app_template, "AWS::EC2::SecurityGroupIngress").values()]
    into_tasks = [rule for rule in ingress if rule["GroupId"] == {"Ref": task_group}]
    (balancer,) = [balancer for balancer in resources_of_type(app_template, "AWS::ElasticLoadBalancingV2::LoadBalancer")
                   .values() if balancer["Properties"]["Type"] == "application"]
    (balancer_group,) = balancer["Properties"]["SecurityGroups"]
    assert [rule["SourceSecurityGroupId"] for rule in into_tasks] == [balancer_group]
    into_database = [rule for rule in ingress if rule["GroupId"] == {"Ref": "DatabaseSecurityGroupId"}]
    assert [rule["SourceSecurityGroupId"] for rule in into_database] == [{"Ref": task_group}]
    database = load_template("database.yaml")
    (database_group,) = resources_of_type(database, "AWS::EC2::SecurityGroup").values()
    assert "SecurityGroupIngress" not in database_group["Properties"]


def test_task_role_reaches_only_the_image_bucket_and_its_key(app_template: dict[str, Any]):
    roles = {name: r for name, r in resources_of_type(app_template, "AWS::IAM::Role").items()
             if any(refers_to(t["Properties"].get("TaskRoleArn"), name)
                    for t in resources_of_type(app_template, "AWS::ECS::TaskDefinition").values())}
    assert len(roles) == 1
    (role,) = roles.values()
    statements = [s for policy in role["Properties"]["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert "*" not in as_list(statement["Action"])
        for resource in as_list(statement["Resource"]):
            assert resource != "*"
            assert "BucketName" in str(resource) or resource == {"Ref": "KmsKeyArn"}
    kms = [s for s in statements if any(a.startswith("kms:") for a in as_list(s["Action"]))]
    assert kms
    assert all(s["Condition"]["StringEquals"]["kms:ViaService"] for s in kms)


# -- docker compose and the image ----------------------------------------------------------------

@pytest.fixture(scope="module")
def compose_text() -> str:
    return (INFRA / "docker-compose.yml").read_text()


@pytest.fixture(scope="module")
def compose(compose_text: str) -> dict[str, Any]:
    return yaml.safe_load(compose_text)


def _interpolate(value: str) -> str:
    """What compose makes of a value when every required variable is set (to a stand-in)."""
    stand_ins = {"SECRET_KEY": "k" * 48}

    def replace(match: re.Match[str]) -> str:
        name, operator, rest = match.group(1), match.group(2), match.group(3)
        if operator == ":-":
            return rest
        return stand_ins.get(name, f"stand-in-{name.lower()}")

    return re.sub(r"\$\{([A-Z0-9_]+)(:[?-])([^}]*)\}", replace, value)


def test_compose_has_every_service_the_server_needs(compose: dict[str, Any]):
    services = compose["services"]
    assert {"app", "worker", "migrate", "postgres", "minio", "minio-setup"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:15")
    assert "gunicorn" in services["app"]["command"]
    assert services["worker"]["command"][-1] == "worker"
    assert services["dicom-listener"]["command"][-1] == "dicom-listener"
    assert services["dicom-listener"]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services["migrate"]["command"][-2:] == ["db", "upgrade"]
    for name in ("app", "worker"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services["migrate"]["depends_on"]["minio-setup"] == {"condition": "service_completed_successfully"}


def test_compose_requires_every_secret_and_commits_none(compose: dict[str, Any], compose_text: str):
    for name in SECRET_VARIABLES:
        references = re.findall(r"\$\{" + name + r"([^}]*)\}", compose_text)
        assert references, f"{name} is not asked for"
        assert all(ref.startswith(":?") for ref in references), f"{name} has a default or is optional"
    for service in ("app", "worker", "migrate"):
        environment = compose["services"][service]["environment"]
        assert re.fullmatch(r"\$\{SECRET_KEY:\?[^}]+\}", environment["SECRET_KEY"])


def test_compose_hands_the_server_settings_it_accepts(compose: dict[str, Any]):
    for service in ("app", "worker", "migrate", "dicom-listener"):
        environment = {name: _interpolate(str(value))
                       for name, value in compose["services"][service]["environment"].items()}
        assert environment["APP_ENV"] == "production"
        assert environment["DATABASE_URL"].startswith("postgresql://")
        assert environment["AWS_ENDPOINT_URL"] == "http://minio:9000"
        settings = load_settings(environment)
        assert settings.database_url.startswith("postgresql+psycopg://referral:")
        assert settings.storage_url.startswith("s3://")
        store = storage.from_url(settings.storage_url)
        store.close()


def test_image_runs_gunicorn_as_a_non_root_user_with_the_pdf_libraries():
    dockerfile = (INFRA / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim-bookworm", dockerfile, re.MULTILINE)
    user = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert user
    assert user[-1].split(":")[0] not in ("root", "0")
    assert 'CMD ["gunicorn", "-c", "infra/gunicorn.conf.py", "wsgi:app"]' in dockerfile
    assert "HEALTHCHECK" in dockerfile
    assert "/healthz" in dockerfile
    assert "[dev]" not in dockerfile
    system_deps = (INFRA / "system-deps.sh").read_text()
    # The apt package list of the PDF libraries (the same four as infra/system-deps.sh installs).
    pdf_packages = re.search(r'"(libpango-1\.0-0 [^"]*)"', system_deps)
    assert pdf_packages
    for package in pdf_packages.group(1).split():
        assert package in dockerfile


def test_build_context_leaves_out_environments_data_and_caches():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "instance", ".pytest_cache"} <= ignored
