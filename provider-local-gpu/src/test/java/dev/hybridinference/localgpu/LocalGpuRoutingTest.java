package dev.hybridinference.localgpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.hybridinference.core.Attempt;
import dev.hybridinference.core.CapacityExceededException;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ClientInfo;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.FinishReason;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.ResponseFormat;
import dev.hybridinference.core.ToolDefinition;
import dev.hybridinference.core.Usage;
import dev.hybridinference.core.routing.HybridClient;
import dev.hybridinference.core.spi.AbstractProviderClient;
import dev.hybridinference.core.spi.CallContext;
import dev.hybridinference.core.spi.ProviderResult;
import dev.hybridinference.core.spi.ProviderStream;
import dev.hybridinference.localgpu.internal.NativeEngineException;
import java.io.IOException;
import java.time.Clock;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * What the local runtime tells the composite client, and the routing that follows: requests it cannot
 * take go elsewhere before anything is sent to it. Runs with or without the native library.
 */
@Timeout(120)
class LocalGpuRoutingTest {
    /** A stand-in for a server member that takes everything. */
    static final class Server extends AbstractProviderClient {
        Server() {
            super("server", "test", DeploymentKind.SERVER, Pricing.FREE, null, Clock.systemUTC());
        }

        @Override
        protected ProviderResult doChat(ChatRequest request, CallContext ctx) {
            return ProviderResult.builder()
                    .text("from server")
                    .finishReason(FinishReason.STOP)
                    .usage(new Usage(1, 1, 0))
                    .model("big")
                    .build();
        }

        @Override
        protected ProviderStream doStream(ChatRequest request, CallContext ctx) {
            throw new UnsupportedOperationException();
        }
    }

    private static LocalGpuClient local() throws IOException {
        return LocalGpuClient.builder()
                .device("cpu")
                .modelPath(Fixtures.file("tiny-f32.gguf"))
                .threads(1)
                .contextSize(128)
                .maxSessions(1)
                .build();
    }

    @Test
    void theLocalRuntimeSaysItHasNoToolsNoJsonFormatsAndItsContext() throws IOException {
        try (LocalGpuClient local = local()) {
            assertThat(local.info().capabilities())
                    .isEqualTo(new ClientInfo.Capabilities(false, false, false, true, 128));
            assertThat(local.info().coldStart().canColdStart()).isFalse();
        }
    }

    @Test
    void requestsTheLocalRuntimeCannotTakeGoToTheNextMemberWithTheReason() throws IOException {
        try (HybridClient h = HybridClient.builder()
                .member("local", local())
                .member("server", new Server())
                .build()) {
            ChatRequest tools = ChatRequest.builder()
                    .user("weather?")
                    .addTool(new ToolDefinition("weather", "", "{\"type\":\"object\"}"))
                    .build();
            ChatRequest json = ChatRequest.builder()
                    .user("x")
                    .responseFormat(ResponseFormat.JSON_OBJECT)
                    .build();
            ChatRequest longPrompt = ChatRequest.of("word ".repeat(600));

            assertSkippedLocal(h.chat(tools).receipt(), "no tool calling");
            assertSkippedLocal(h.chat(json).receipt(), "no JSON object answers");
            assertSkippedLocal(h.chat(longPrompt).receipt(), "prompt of about 754 tokens exceeds its context of 128");
        }
    }

    @Test
    void aDeviceOutOfMemoryFailsTheCallsInItsPassAsCapacity() throws IOException {
        assumeTrue(LocalRuntime.isAvailable(), "native runtime unavailable");
        try (LocalGpuClient local = local()) {
            local.injectFault(NativeEngineException.Kind.DEVICE_MEMORY);
            assertThatThrownBy(() -> local.chat(ChatRequest.of("Hello")))
                    .isInstanceOf(CapacityExceededException.class)
                    .hasMessageEndingWith("engine: injected fault: out of device memory");
            // Memory is a capacity problem, not a broken device: the next call runs.
            assertThat(local.isAvailable()).isTrue();
            assertThat(local.chat(ChatRequest.builder()
                                    .user("Hello")
                                    .maxTokens(2)
                                    .build())
                            .text())
                    .isNotNull();
        }
    }

    @Test
    void aFailedDeviceMakesTheClientUnavailableAndTheCompositeGoesElsewhere() throws IOException {
        assumeTrue(LocalRuntime.isAvailable(), "native runtime unavailable");
        LocalGpuClient local = local();
        try (HybridClient h = HybridClient.builder()
                .member("local", local)
                .member("server", new Server())
                .build()) {
            local.injectFault(NativeEngineException.Kind.DEVICE_FAILED);
            // The call in the failing pass: the composite falls back to the next member.
            Receipt during = h.chat(
                            ChatRequest.builder().user("Hello").maxTokens(2).build())
                    .receipt();
            assertThat(during.providerId()).isEqualTo("server");
            assertThat(during.attempts().get(0).outcome()).isNotEqualTo(Attempt.Outcome.SKIPPED);

            String why = "the device cpu failed: injected fault: the device failed";
            assertThat(local.isAvailable()).isFalse();
            assertThat(local.unavailableReason()).contains(why);
            assertThatThrownBy(() -> local.chat(ChatRequest.of("Hello")))
                    .isInstanceOf(ProviderUnavailableException.class)
                    .hasMessageEndingWith(why);
            // Later calls skip the local member without calling it.
            assertSkippedLocal(h.chat(ChatRequest.of("Hello")).receipt(), "unavailable: " + why);
        }
    }

    private static void assertSkippedLocal(Receipt r, String why) {
        assertThat(r.providerId()).isEqualTo("server");
        Attempt first = r.attempts().get(0);
        assertThat(first.providerId()).isEqualTo("local");
        assertThat(first.outcome()).isEqualTo(Attempt.Outcome.SKIPPED);
        assertThat(first.error()).isEqualTo(why);
        assertThat(r.route()).contains("skipped local: " + why);
    }
}
