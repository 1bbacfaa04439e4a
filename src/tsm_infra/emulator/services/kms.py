"""KMS: key properties from the template, and GenerateDataKeyPair, which moto lacks."""

from __future__ import annotations

import base64
import json
from typing import Any
from unittest import mock

from tsm_infra.emulator.registry import Context, Installed, provider
from tsm_infra.emulator.services.common import tags, truthy


@provider(
    "kms-key-properties",
    emulates="KMS keys take their tags, JSON key policy (or the default one) and rotation setting "
    "from the template.",
)
def kms_key_properties(ctx: Context) -> Installed:
    from moto.kms.models import Key  # noqa: PLC0415

    original = Key.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def create(
        cls: Any, /, name: str, cfn: dict[str, Any], account: str, region: str, **kw: Any
    ) -> Any:
        props = dict(cfn["Properties"])
        # CloudFormation takes the policy as a JSON object and tags as Key/Value; moto's KMS
        # backend wants a policy document string and TagKey/TagValue.
        if isinstance(props.get("KeyPolicy"), dict):
            props["KeyPolicy"] = json.dumps(props["KeyPolicy"])
        # KeyPolicy is optional: without one AWS (and moto, given None) applies the default
        # policy, which lets the account's IAM policies grant use of the key
        props.setdefault("KeyPolicy", None)
        props["Tags"] = [
            {"TagKey": t["Key"], "TagValue": t["Value"]} for t in tags(props.get("Tags"))
        ]
        key = original(cls, name, {**cfn, "Properties": props}, account, region, **kw)
        key.key_rotation_status = truthy(props.get("EnableKeyRotation", False))
        return key

    return [mock.patch.object(Key, "create_from_cloudformation_json", classmethod(create))]


_CURVES = {"ECC_NIST_P256": "SECP256R1", "ECC_NIST_P384": "SECP384R1", "ECC_NIST_P521": "SECP521R1"}


@provider(
    "kms-generate-data-key-pair",
    emulates="KMS GenerateDataKeyPair (NIST P-256/384/521) runs in the emulator with a locally "
    "generated key pair.",
)
def kms_generate_data_key_pair(ctx: Context) -> Installed:
    from moto.kms.responses import KmsResponse  # noqa: PLC0415

    def generate_data_key_pair(self: Any) -> str:
        from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
        from moto.kms.exceptions import ValidationException  # noqa: PLC0415

        key_id, spec = self._get_param("KeyId"), self._get_param("KeyPairSpec")
        context = self._get_param("EncryptionContext", {})
        self._validate_key_id(key_id)
        if spec not in _CURVES:
            # RSA specs exist in AWS too; the templates use only the NIST curves
            raise ValidationException(
                f"KeyPairSpec {spec} is not emulated; use {', '.join(_CURVES)}"
            )
        private = ec.generate_private_key(getattr(ec, _CURVES[spec])())
        pkcs8 = private.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        spki = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        blob, arn = self.kms_backend.encrypt(
            key_id=key_id, plaintext=pkcs8, encryption_context=context
        )
        return json.dumps(
            {
                "PrivateKeyCiphertextBlob": base64.b64encode(blob).decode(),
                "PrivateKeyPlaintext": base64.b64encode(pkcs8).decode(),
                "PublicKey": base64.b64encode(spki).decode(),
                "KeyId": arn,
                "KeyPairSpec": spec,
            }
        )

    return [
        mock.patch.object(
            KmsResponse, "generate_data_key_pair", generate_data_key_pair, create=True
        )
    ]
