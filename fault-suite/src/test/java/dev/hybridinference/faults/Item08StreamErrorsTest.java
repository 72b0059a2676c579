package dev.hybridinference.faults;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ContextLengthExceededException;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.testkit.FaultServer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Item 8: the ways servers report errors in and around streams. llama.cpp sends a mid-stream failure as
 * an SSE line {@code error: {"code":500,"message":...,"type":"server_error"}} and then {@code data:
 * [DONE]}; that is a failure, not an answer. A chunk with {@code "error": null} is an ordinary chunk. A
 * {@code data: {"error":{...}}} event followed by {@code [DONE]} is a failure. The context-overflow
 * messages of llama.cpp (HTTP 400 or 500) and vLLM (HTTP 400) are {@link ContextLengthExceededException}s,
 * blocking and streamed. Invalid UTF-8 decodes to the same text, with U+FFFD, blocking and streamed.
 */
@FaultItem(value = 8, title = "Stream errors")
class Item08StreamErrorsTest extends FaultTestBase {
    private FaultServer server;
    private InferenceClient client;

    @BeforeEach
    void start() {
        server = server().answerTokens(6);
        CostLedger ledger = new CostLedger();
        client = load(Yaml.single(server.baseUrl()), ledger);
        probe.ledger(ledger, Probe.Accounting.DIRECT);
    }

    @Test
    void llamaCppErrorEventMidStreamIsAFailure() {
        server.streamError(FaultServer.StreamError.LLAMA_CPP_ERROR_EVENT, 3, "slot crashed while decoding");
        Probe.Outcome<Probe.Streamed> pulled = probe.stream(client, ask("go"), LIMIT);
        assertThat(pulled.error())
                .as(
                        "llama.cpp `error:` event then [DONE], pulled: %s (text so far: \"%s\")",
                        pulled.describe(), pulled.value().text)
                .isInstanceOf(InferenceException.class);
        PushRecorder pushed = probe.push(client, ask("go"), LIMIT);
        assertThat(pushed.error())
                .as("llama.cpp `error:` event then [DONE], pushed: %s", pushed.describe())
                .isNotNull();
    }

    @Test
    void aChunkWithANullErrorFieldIsAnOrdinaryChunk() {
        server.streamError(FaultServer.StreamError.NULL_ERROR_FIELD, 0);
        Probe.Outcome<Probe.Streamed> pulled = probe.stream(client, ask("go"), LIMIT);
        assertThat(pulled.ok())
                .as("chunks carrying \"error\": null: " + pulled.describe())
                .isTrue();
        assertThat(pulled.value().response.text()).isEqualTo("token1 token2 token3 token4 token5 token6");
    }

    @Test
    void aDataErrorEventFollowedByDoneIsAFailure() {
        server.streamError(FaultServer.StreamError.DATA_ERROR_THEN_DONE, 2, "upstream failed");
        Probe.Outcome<Probe.Streamed> pulled = probe.stream(client, ask("go"), LIMIT);
        assertThat(pulled.error())
                .as("data: {\"error\":...} then [DONE]: " + pulled.describe())
                .isInstanceOf(InferenceException.class);
    }

    @Test
    void contextOverflowMessagesAreContextLengthExceeded() {
        Map<String, FaultServer.Failure> cases = new LinkedHashMap<>();
        cases.put(
                "llama.cpp 400 exceeds context",
                FaultServer.Failure.llamaCpp(400, FaultServer.LLAMA_CPP_CONTEXT_EXCEEDED, "exceed_context_size_error"));
        cases.put(
                "llama.cpp 500 exceeds context",
                FaultServer.Failure.llamaCpp(500, FaultServer.LLAMA_CPP_CONTEXT_EXCEEDED, "server_error"));
        cases.put(
                "llama.cpp 500 context shift disabled",
                FaultServer.Failure.llamaCpp(500, FaultServer.LLAMA_CPP_CONTEXT_SHIFT_DISABLED, "server_error"));
        cases.put(
                "llama.cpp 400 context shift disabled",
                FaultServer.Failure.llamaCpp(
                        400, FaultServer.LLAMA_CPP_CONTEXT_SHIFT_DISABLED, "invalid_request_error"));
        cases.put("vLLM 400 maximum context length", FaultServer.Failure.vllm(400, FaultServer.VLLM_CONTEXT_EXCEEDED));
        List<String> wrong = new ArrayList<>();
        for (Map.Entry<String, FaultServer.Failure> c : cases.entrySet()) {
            server.failAlways(c.getValue());
            Probe.Outcome<ChatResponse> blocking = probe.chat(client, ask("a very long prompt"), LIMIT);
            Probe.Outcome<Probe.Streamed> streamed = probe.stream(client, ask("a very long prompt"), LIMIT);
            if (!(blocking.error() instanceof ContextLengthExceededException)) {
                wrong.add(c.getKey() + ", blocking: " + blocking.describe());
            }
            if (!(streamed.error() instanceof ContextLengthExceededException)) {
                wrong.add(c.getKey() + ", streamed: " + streamed.describe());
            }
        }
        assertThat(wrong)
                .as("context overflows not raised as ContextLengthExceededException")
                .isEmpty();
    }

    @Test
    void invalidUtf8DecodesTheSameBlockingAndStreamed() {
        server.invalidUtf8(true);
        Probe.Outcome<ChatResponse> blocking = probe.chat(client, ask("bytes"), LIMIT);
        Probe.Outcome<Probe.Streamed> streamed = probe.stream(client, ask("bytes"), LIMIT);
        assertThat(blocking.ok())
                .as("blocking answer with invalid UTF-8: " + blocking.describe())
                .isTrue();
        assertThat(streamed.ok())
                .as("streamed answer with invalid UTF-8: " + streamed.describe())
                .isTrue();
        String b = blocking.value().text();
        String s = streamed.value().response.text();
        assertThat(s).as("streamed text against blocking text").isEqualTo(b);
        assertThat(b).contains("\uFFFD").startsWith("Hello ");
    }
}
