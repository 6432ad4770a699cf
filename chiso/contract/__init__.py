"""The extract contract: what the portal sends, in the portal's own vocabulary.

Entities and their fields are declared in ``entities.py``; JSON Schemas, CSV headers and the
documentation page (docs/contract.md) are derived from those declarations.
"""

from chiso.contract.canonical import canonical_line, sha256_of_rows
from chiso.contract.entities import ENTITIES, get_entity
from chiso.contract.model import CONTRACT_VERSION, Entity, Field

__all__ = ["CONTRACT_VERSION", "ENTITIES", "Entity", "Field", "canonical_line", "get_entity", "sha256_of_rows"]
