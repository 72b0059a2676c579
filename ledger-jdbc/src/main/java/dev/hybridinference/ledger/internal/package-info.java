/**
 * The spend log's parts: SQL dialects, migrations, the row and spool formats. Internal: not part of the API,
 * and changed without notice.
 */
package dev.hybridinference.ledger.internal;
