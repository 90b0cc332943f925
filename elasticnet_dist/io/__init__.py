"""Tables: Parquet / fsspec / DataFrame input, column roles, decoding, checks."""
from .blocks import DTYPES, NAN_POLICIES, Block, BlockDecoder, BlockSummary
from .columns import ColumnPlan, plan_columns
from .table import FilePiece, MemoryPiece, TableInput, open_table

__all__ = ["Block", "BlockDecoder", "BlockSummary", "ColumnPlan", "DTYPES", "FilePiece",
           "MemoryPiece", "NAN_POLICIES", "TableInput", "open_table", "plan_columns"]
