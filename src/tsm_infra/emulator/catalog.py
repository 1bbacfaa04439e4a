"""Every provider and rule of the emulator, in the order the rehearsal report lists them.

The order here is only the order of that list: where providers change the same moto function,
the order they apply in is the one their `Hook` writes down (see `hooks.py`).
"""

from __future__ import annotations

from tsm_infra.emulator.constraints import CONSTRAINTS
from tsm_infra.emulator.engine import changes, delete, describe, execute, langext, resolve, resume
from tsm_infra.emulator.limits import LIMITS
from tsm_infra.emulator.registry import Provider
from tsm_infra.emulator.services import (
    acm,
    cloudmap,
    cloudwatch,
    ec2,
    elbv2,
    keygen,
    kms,
    ram_ssm,
    rds,
    secretsmanager,
)

PROVIDER_LIST: tuple[Provider, ...] = (
    # the CloudFormation engine
    langext.language_extensions,
    execute.stack_failure_status,
    delete.stack_delete_order,
    describe.stack_resource_detail,
    resolve.no_value_in_lists,
    describe.stack_parameter_values,
    resume.resume_failed_stack,
    changes.change_set_replacement,
    changes.empty_change_set,
    execute.change_set_outputs,
    # the services
    kms.kms_key_properties,
    kms.kms_generate_data_key_pair,
    secretsmanager.secretsmanager_secret,
    secretsmanager.secretsmanager_resource_policy,
    keygen.keygen_custom_resource,
    ram_ssm.ssm_parameter_attributes,
    ram_ssm.ram_share,
    ram_ssm.ram_invitations,
    ram_ssm.ssm_cross_account_read,
    resolve.sub_dotted_attributes,
    resolve.fn_cidr,
    ec2.security_group_egress,
    ec2.network_deletion,
    ec2.eip_public_ip,
    elbv2.nlb_type_and_tls,
    acm.acm_certificate,
    cloudmap.cloudmap,
    cloudwatch.cloudwatch_alarm,
    rds.rds_instance_properties,
    rds.rds_managed_master_secret,
    rds.rds_snapshot_on_delete,
)

PROVIDERS: tuple[str, ...] = tuple(p.name for p in PROVIDER_LIST)

# rules of what AWS refuses, installed with the providers and listed after them
RULES: tuple[Provider, ...] = (*CONSTRAINTS, *LIMITS)
