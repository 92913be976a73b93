#!/usr/bin/python
# Copyright: Parhelion developers
# BSD-3-Clause (see LICENSE in the repository)
"""An IAM OpenID Connect provider (an EKS cluster's issuer, for IAM roles for service accounts)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: iam_oidc_provider
short_description: Manage an IAM OpenID Connect identity provider
version_added: "2026.11.0"
description:
  - Registers an OIDC issuer (for Parhelion, the EKS cluster's) with IAM, so that Kubernetes
    service accounts can take IAM roles (IRSA) - Karpenter's controller, the accounting
    service (read-only) and users' servers (S3 read). Neither amazon.aws nor community.aws
    manages OIDC providers.
  - Idempotent; client IDs and thumbprints are brought to what is asked. Check and diff modes.
options:
  url:
    description: The issuer URL (https://...), as the EKS cluster reports it.
    type: str
    required: true
  state:
    description: Whether the provider should exist.
    type: str
    choices: [present, absent]
    default: present
  client_ids:
    description: Audiences allowed to use the provider.
    type: list
    elements: str
    default: [sts.amazonaws.com]
  thumbprints:
    description: Server certificate thumbprints (IAM no longer needs them for well-known issuers).
    type: list
    elements: str
    default: []
  tags:
    description: Tags of the provider (set when it is created).
    type: dict
    default: {}
extends_documentation_fragment:
  - parhelion.platform.common
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: The cluster's issuer, for IRSA
  parhelion.platform.iam_oidc_provider:
    url: "{{ cluster.cluster.identity.oidc.issuer }}"
  register: oidc
"""

RETURN = r"""
arn:
  description: The provider's ARN.
  returned: when O(state=present)
  type: str
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports a missing botocore


def _host_path(url):
    return url.split("://", 1)[-1].rstrip("/")


def find_provider(client, url):
    wanted = _host_path(url)
    for entry in client.list_open_id_connect_providers().get("OpenIDConnectProviderList", []):
        arn = entry["Arn"]
        if arn.split(":oidc-provider/", 1)[-1] == wanted:
            described = client.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
            return arn, described
    return None, None


def main():
    module = AnsibleAWSModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "client_ids": {"type": "list", "elements": "str", "default": ["sts.amazonaws.com"]},
            "thumbprints": {"type": "list", "elements": "str", "default": []},
            "tags": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    p = module.params
    if not p["url"].startswith("https://"):
        module.fail_json(msg=f"url must be an https:// issuer, not {p['url']!r}")
    client = module.client("iam")
    try:
        arn, current = find_provider(client, p["url"])
        if p["state"] == "absent":
            if arn and not module.check_mode:
                client.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)
            module.exit_json(
                changed=arn is not None, diff={"before": {"url": p["url"]} if arn else {}, "after": {}}
            )
        want = {"client_ids": sorted(p["client_ids"]), "thumbprints": sorted(p["thumbprints"])}
        if arn is None:
            if module.check_mode:
                module.exit_json(changed=True, diff={"before": {}, "after": want})
            arguments = {"Url": p["url"], "ClientIDList": p["client_ids"]}
            if p["thumbprints"]:
                arguments["ThumbprintList"] = p["thumbprints"]
            if p["tags"]:
                arguments["Tags"] = [{"Key": k, "Value": str(v)} for k, v in p["tags"].items()]
            arn = client.create_open_id_connect_provider(**arguments)["OpenIDConnectProviderArn"]
            module.exit_json(changed=True, arn=arn, diff={"before": {}, "after": want})
        have = {
            "client_ids": sorted(current.get("ClientIDList", [])),
            # without thumbprints asked for, IAM fills in its own: those are not a difference
            "thumbprints": sorted(current.get("ThumbprintList", [])) if p["thumbprints"] else [],
        }
        changed = have != want
        if changed and not module.check_mode:
            for client_id in set(want["client_ids"]) - set(have["client_ids"]):
                client.add_client_id_to_open_id_connect_provider(
                    OpenIDConnectProviderArn=arn, ClientID=client_id
                )
            for client_id in set(have["client_ids"]) - set(want["client_ids"]):
                client.remove_client_id_from_open_id_connect_provider(
                    OpenIDConnectProviderArn=arn, ClientID=client_id
                )
            if have["thumbprints"] != want["thumbprints"] and want["thumbprints"]:
                client.update_open_id_connect_provider_thumbprint(
                    OpenIDConnectProviderArn=arn, ThumbprintList=want["thumbprints"]
                )
        module.exit_json(changed=changed, arn=arn, diff={"before": have, "after": want})
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
        module.fail_json_aws(error, msg=f"IAM OIDC provider {p['url']}")


if __name__ == "__main__":
    main()
