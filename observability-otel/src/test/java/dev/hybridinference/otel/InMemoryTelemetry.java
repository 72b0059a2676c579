package dev.hybridinference.otel;

import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.sdk.OpenTelemetrySdk;
import io.opentelemetry.sdk.metrics.SdkMeterProvider;
import io.opentelemetry.sdk.metrics.data.MetricData;
import io.opentelemetry.sdk.metrics.data.PointData;
import io.opentelemetry.sdk.testing.exporter.InMemoryMetricReader;
import io.opentelemetry.sdk.testing.exporter.InMemorySpanExporter;
import io.opentelemetry.sdk.trace.SdkTracerProvider;
import io.opentelemetry.sdk.trace.data.SpanData;
import io.opentelemetry.sdk.trace.export.SimpleSpanProcessor;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/** An OpenTelemetry SDK that keeps its spans and metrics in memory for the tests to read. */
final class InMemoryTelemetry implements AutoCloseable {
    final InMemorySpanExporter spans = InMemorySpanExporter.create();
    final InMemoryMetricReader reader = InMemoryMetricReader.create();
    final OpenTelemetrySdk sdk = OpenTelemetrySdk.builder()
            .setTracerProvider(SdkTracerProvider.builder()
                    .addSpanProcessor(SimpleSpanProcessor.create(spans))
                    .build())
            .setMeterProvider(
                    SdkMeterProvider.builder().registerMetricReader(reader).build())
            .build();

    /** The spans ended so far, in the order they ended. */
    List<SpanData> spans() {
        return spans.getFinishedSpanItems();
    }

    /** The one ended span of this name. */
    SpanData span(String name) {
        List<SpanData> found =
                spans().stream().filter(s -> s.getName().equals(name)).toList();
        if (found.size() != 1) {
            throw new AssertionError("expected one span named " + name + ", got " + spans());
        }
        return found.get(0);
    }

    /** Every metric collected now, by name. */
    Map<String, MetricData> metrics() {
        Collection<MetricData> all = reader.collectAllMetrics();
        Map<String, MetricData> out = new TreeMap<>();
        for (MetricData m : all) {
            out.put(m.getName(), m);
        }
        return out;
    }

    /** The metric of this name, collected now. */
    Optional<MetricData> metric(String name) {
        return Optional.ofNullable(metrics().get(name));
    }

    /** The attributes of every point of every metric. */
    static List<Attributes> pointAttributes(Collection<MetricData> metrics) {
        List<Attributes> out = new ArrayList<>();
        for (MetricData m : metrics) {
            for (PointData p : m.getData().getPoints()) {
                out.add(p.getAttributes());
            }
        }
        return out;
    }

    /** Every attribute key name of every point of every metric. */
    static List<String> keyNames(Collection<MetricData> metrics) {
        List<String> out = new ArrayList<>();
        for (Attributes a : pointAttributes(metrics)) {
            for (AttributeKey<?> k : a.asMap().keySet()) {
                out.add(k.getKey());
            }
        }
        return out;
    }

    @Override
    public void close() {
        sdk.close();
    }
}
