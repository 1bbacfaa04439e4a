"""Local AWS for `tsm-infra deploy --local`: moto's server plus what moto lacks (emulation).

Everything runs in memory in this process on 127.0.0.1. Each gap in moto is filled by one named
provider (see `catalog.PROVIDER_LIST`), applied on start and undone on stop.
"""

from tsm_infra.emulator.catalog import PROVIDERS
from tsm_infra.emulator.server import NOTES, SUPPORTED_MOTO, EmulatorError, LocalAws

__all__ = ["NOTES", "PROVIDERS", "SUPPORTED_MOTO", "EmulatorError", "LocalAws"]
