package dev.hybridinference.otel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.InferenceListener;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.RequestOptions;
import dev.hybridinference.core.routing.HybridClient;
import dev.hybridinference.core.spi.ProviderContext;
import io.micrometer.core.instrument.Metrics;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.opentelemetry.api.GlobalOpenTelemetry;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.sdk.metrics.data.MetricData;
import io.opentelemetry.sdk.trace.data.SpanData;
import java.math.BigDecimal;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The {@code otel} and {@code micrometer} listener types of the configuration file. */
class ListenerConfigTest {
    private static final AttributeKey<String> TENANT = AttributeKey.stringKey("hybrid_inference.tag.tenant");

    private final InMemoryTelemetry telemetry = new InMemoryTelemetry();
    private final SimpleMeterRegistry registry = new SimpleMeterRegistry();

    @AfterEach
    void reset() {
        GlobalOpenTelemetry.resetForTest();
        Metrics.globalRegistry.remove(registry);
        telemetry.close();
        registry.close();
    }

    /** Loads {@code yaml}, each provider a {@link TestMember} billed per instance hour into the config's ledger. */
    private static InferenceClient load(String yaml) {
        return InferenceClients.loader()
                .providerFactory(ListenerConfigTest::member)
                .load(yaml);
    }

    private static InferenceClient member(ProviderContext ctx) {
        return new TestMember(
                ctx.id(),
                DeploymentKind.SERVER,
                new Pricing.PerInstanceHour(new BigDecimal("3.60"), 1),
                ctx.ledger(),
                "http://gpu-1:8000");
    }

    private static ChatRequest request() {
        return ChatRequest.builder()
                .model("llama")
                .user("hi")
                .options(RequestOptions.builder()
                        .tag("tenant", "acme")
                        .tag("user", "u-1")
                        .build())
                .build();
    }

    private static ConfigurationException configError(String yaml) {
        Throwable t =
                org.assertj.core.api.Assertions.catchThrowable(() -> load(yaml).close());
        assertThat(t).isInstanceOf(ConfigurationException.class);
        return (ConfigurationException) t;
    }

    @Test
    void anOtelListenerFromTheConfigurationRecordsToTheGlobalOpenTelemetry() {
        GlobalOpenTelemetry.set(telemetry.sdk);
        String yaml = "providers:\n  main: {type: test}\n"
                + "listeners:\n  - {type: otel, tags: [tenant], attemptSpans: false, capacity: [main]}\n";
        try (InferenceClient c = load(yaml)) {
            List<InferenceListener> listeners =
                    c.unwrap(HybridClient.class).orElseThrow().listeners();
            assertThat(listeners).hasSize(1).first().isInstanceOf(OpenTelemetryListener.class);
            OpenTelemetryListener l = (OpenTelemetryListener) listeners.get(0);
            assertThat(l.metricTags()).containsExactly("tenant");
            assertThat(l.attemptSpans()).isFalse();
            c.chat(request());
            // The capacity gauges read the configuration's ledger, where the provider registered itself.
            assertThat(telemetry.metric("hybrid_inference.capacity.billed")).isPresent();
        }
        assertThat(telemetry.spans()).extracting(SpanData::getName).containsExactly("chat llama");
        SpanData call = telemetry.span("chat llama");
        assertThat(call.getAttributes().get(TENANT)).isEqualTo("acme");
        assertThat(call.getAttributes().get(OpenTelemetryListener.SERVER_ADDRESS))
                .isEqualTo("gpu-1");
        MetricData duration =
                telemetry.metric("gen_ai.client.operation.duration").orElseThrow();
        assertThat(duration.getHistogramData().getPoints())
                .singleElement()
                .satisfies(p -> assertThat(p.getAttributes().get(TENANT)).isEqualTo("acme"));
        assertThat(InMemoryTelemetry.keyNames(telemetry.metrics().values()))
                .doesNotContain("hybrid_inference.tag.user");
        // The listener closed with the client: its capacity gauges are gone.
        assertThat(telemetry.metrics()).doesNotContainKey("hybrid_inference.capacity.billed");
    }

    @Test
    void aMicrometerListenerFromTheConfigurationCountsInTheGlobalRegistry() {
        Metrics.globalRegistry.add(registry);
        String yaml = "providers:\n  main: {type: test}\n"
                + "listeners:\n  - {type: micrometer, tags: [tenant], capacity: [main]}\n";
        try (InferenceClient c = load(yaml)) {
            c.chat(request());
            assertThat(registry.find("hybrid_inference.capacity.billed")
                            .tag("gen_ai.provider.name", "main")
                            .gauge())
                    .isNotNull();
        }
        Timer t = registry.find("gen_ai.client.operation.duration")
                .tag("hybrid_inference.tag.tenant", "acme")
                .tag("gen_ai.provider.name", "main")
                .timer();
        assertThat(t).isNotNull();
        assertThat(t.count()).isEqualTo(1);
        assertThat(registry.find("hybrid_inference.capacity.billed").gauge()).isNull();
    }

    @Test
    void badListenerSectionsNameTheKeyAtFault() {
        String head = "providers:\n  main: {type: test}\nlisteners:\n";
        assertThat(configError(head + "  - {type: otel, tgas: [tenant]}\n").getMessage())
                .startsWith("listeners[0].tgas: unknown key (did you mean 'tags'?)");
        assertThat(configError(head + "  - {type: otel, tags: [tenant, tenant]}\n")
                        .getMessage())
                .isEqualTo("listeners[0].tags[1]: tag \"tenant\" is listed twice");
        assertThat(configError(head + "  - {type: otel, tags: [\"two words\"]}\n")
                        .getMessage())
                .startsWith("listeners[0].tags[0]: expected a tag name")
                .endsWith("got \"two words\"");
        assertThat(configError(head + "  - {type: otel, tags: [{a: b}]}\n").getMessage())
                .isEqualTo("listeners[0].tags[0]: expected a request tag name such as tenant, got a mapping");
        assertThat(configError(head + "  - {type: otel, tags: tenant}\n").getMessage())
                .startsWith("listeners[0].tags: expected a list");
        assertThat(configError(head + "  - {type: otel, attemptSpans: maybe}\n").getMessage())
                .isEqualTo("listeners[0].attemptSpans: expected true or false, got \"maybe\"");
        assertThat(configError(head + "  - {type: micrometer, attemptSpans: true}\n")
                        .getMessage())
                .startsWith("listeners[0].attemptSpans: unknown key");
        assertThat(configError(head + "  - {type: otel, capacity: [\"\"]}\n").getMessage())
                .isEqualTo("listeners[0].capacity[0]: expected a provider id, got an empty value");
    }

    @Test
    void theFactoriesClaimTheirTypes() {
        assertThat(new OpenTelemetryListenerFactory().type()).isEqualTo("otel");
        assertThat(new MicrometerListenerFactory().type()).isEqualTo("micrometer");
        assertThatThrownBy(() -> load("providers:\n  main: {type: test}\nlisteners:\n  - {type: otle}\n"))
                .isInstanceOf(ConfigurationException.class)
                .hasMessageContaining("otel")
                .hasMessageContaining("micrometer");
    }
}
