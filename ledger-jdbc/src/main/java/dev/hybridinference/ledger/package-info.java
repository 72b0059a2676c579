/** A durable spend log of receipts through JDBC. */
package dev.hybridinference.ledger;
