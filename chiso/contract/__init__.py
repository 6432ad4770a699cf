"""The extract contract: what the portal sends, in the portal's own vocabulary.

v1 covers two entities (the unit catalogue and dossiers). Issue #3 extends it to the full contract
with JSON Schemas; the loader and the simulator already read everything from here.
"""

from chiso.contract.canonical import canonical_line, sha256_of_rows
from chiso.contract.entities import ENTITIES, Entity, get_entity

__all__ = ["ENTITIES", "Entity", "canonical_line", "get_entity", "sha256_of_rows"]
