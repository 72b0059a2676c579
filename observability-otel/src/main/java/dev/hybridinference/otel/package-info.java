/** OpenTelemetry and Micrometer listeners of the SDK's calls. */
package dev.hybridinference.otel;
