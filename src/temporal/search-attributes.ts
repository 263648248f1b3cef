// Workflow code imports this module, so it must stay sandbox-safe: @temporalio/common only, no Node built-ins.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
// The key type is not re-exported from the package root.
import type { SearchAttributeKey } from '@temporalio/common/lib/search-attributes.js';

/**
 * mechanic's custom search attributes. They let the Temporal Web UI and `client.workflow.list` filter executions by
 * runbook, operator and status. Search attributes bypass the payload codec and are stored in plaintext, so only
 * non-secret identifiers ever go in them.
 */
export const searchAttributes = {
  runbook: defineSearchAttributeKey('MechanicRunbook', SearchAttributeType.KEYWORD),
  operator: defineSearchAttributeKey('MechanicOperator', SearchAttributeType.KEYWORD),
  status: defineSearchAttributeKey('MechanicStatus', SearchAttributeType.KEYWORD),
} as const;

/** Every key above, for registering them on a server. */
export const allSearchAttributes: SearchAttributeKey<SearchAttributeType>[] = Object.values(searchAttributes);

/**
 * The type name `temporal server start-dev --search-attribute NAME=TYPE` expects (matched case-insensitively by the
 * CLI). Kept next to the keys so a new attribute type cannot be added without a CLI spelling.
 */
export function cliTypeName(type: SearchAttributeType): string {
  switch (type) {
    case SearchAttributeType.TEXT:
      return 'Text';
    case SearchAttributeType.KEYWORD:
      return 'Keyword';
    case SearchAttributeType.INT:
      return 'Int';
    case SearchAttributeType.DOUBLE:
      return 'Double';
    case SearchAttributeType.BOOL:
      return 'Bool';
    case SearchAttributeType.DATETIME:
      return 'Datetime';
    case SearchAttributeType.KEYWORD_LIST:
      return 'KeywordList';
  }
}
