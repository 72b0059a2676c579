/**
 * OpenTelemetry and Micrometer listeners of the SDK's calls: {@link dev.hybridinference.otel.OpenTelemetryListener}
 * (GenAI spans and metrics with the route, cold start and cost of each call) and {@link
 * dev.hybridinference.otel.MicrometerBinder} (the same figures as Micrometer meters), and the configuration types
 * {@code otel} and {@code micrometer} that build them.
 */
package dev.hybridinference.otel;
