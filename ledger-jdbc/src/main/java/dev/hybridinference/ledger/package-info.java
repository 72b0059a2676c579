/**
 * A durable spend log of receipts through JDBC: {@link dev.hybridinference.ledger.JdbcSpendLog} (a listener of
 * composite clients, or {@code ledger: {type: jdbc}} in configuration through {@link
 * dev.hybridinference.ledger.JdbcSpendLogFactory}) appends every receipt to H2 or PostgreSQL, batched and spooled
 * to a local file while the database is away; {@link dev.hybridinference.ledger.SpendTotals} and the {@link
 * dev.hybridinference.ledger.SpendReport} command answer totals by provider, model, tag and time window from the
 * database, and export receipts as a trace for the planner.
 */
package dev.hybridinference.ledger;
