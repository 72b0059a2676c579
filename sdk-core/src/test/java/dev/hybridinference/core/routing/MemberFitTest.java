package dev.hybridinference.core.routing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.Attempt;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.ClientInfo;
import dev.hybridinference.core.ClientInfo.Capabilities;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.InvalidRequestException;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.ResponseFormat;
import dev.hybridinference.core.RouteFacts;
import dev.hybridinference.core.ToolDefinition;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Which members can take a request: capabilities (the member's word, the options' word over it), the
 * prompt against the context, and model names and aliases.
 */
@Timeout(30)
class MemberFitTest {
    /** Like the local runtime: no tools, no JSON formats, streams, a short context. */
    private static final Capabilities LOCAL_LIKE = new Capabilities(false, false, false, true, 2048);

    private static HybridClient.Builder builder() {
        return HybridClient.builder().sleeper(d -> {});
    }

    private static ChatRequest withTool() {
        return ChatRequest.builder()
                .user("what is the weather?")
                .addTool(new ToolDefinition("weather", "The weather in a city", "{\"type\":\"object\"}"))
                .build();
    }

    private static ScriptedMember member(String id) {
        return new ScriptedMember(id, DeploymentKind.SERVER, Pricing.FREE, null);
    }

    @Test
    void aMemberWithoutToolsIsSkippedWithTheReasonAndTheNextAnswers() {
        ScriptedMember local = member("local").capabilities(LOCAL_LIKE);
        ScriptedMember remote = member("remote");
        try (HybridClient h =
                builder().member("local", local).member("remote", remote).build()) {
            ChatResponse r = h.chat(withTool());

            assertThat(r.receipt().providerId()).isEqualTo("remote");
            assertThat(local.calls()).isZero();
            Attempt first = r.receipt().attempts().get(0);
            assertThat(first.providerId()).isEqualTo("local");
            assertThat(first.outcome()).isEqualTo(Attempt.Outcome.SKIPPED);
            assertThat(first.error()).isEqualTo("no tool calling");
            assertThat(r.receipt().route()).contains("skipped local: no tool calling");
            // A plain request still goes to the first member.
            assertThat(h.chat(ChatRequest.of("hi")).receipt().providerId()).isEqualTo("local");
        }
    }

    @Test
    void anUnavailableMemberIsSkippedWithItsReasonInTheRouteFactsAndNeverCalled() {
        ScriptedMember local = member("local").unavailable("the local runtime is unavailable: no native library");
        ScriptedMember remote = member("remote");
        try (HybridClient h =
                builder().member("local", local).member("remote", remote).build()) {
            for (int i = 0; i < 8; i++) {
                ChatResponse r = h.chat(ChatRequest.of("hi"));
                assertThat(r.receipt().providerId()).isEqualTo("remote");
                Attempt first = r.receipt().attempts().get(0);
                assertThat(first.providerId()).isEqualTo("local");
                assertThat(first.outcome()).isEqualTo(Attempt.Outcome.SKIPPED);
                assertThat(first.error()).isEqualTo("unavailable: the local runtime is unavailable: no native library");
                assertThat(r.receipt().routeFacts().skipped())
                        .containsExactly(new RouteFacts.Skip(
                                "local", "unavailable: the local runtime is unavailable: no native library"));
                assertThat(r.receipt().routeFacts().fellBack()).isFalse();
                assertThat(r.receipt().route()).contains("skipped local: unavailable:");
            }
            assertThat(local.calls()).isZero();
            // Skips are not failures: the circuit stays closed however often it is skipped.
            assertThat(h.members().get("local").circuitOpen()).isFalse();
            // Streams and async calls skip it the same way.
            try (ChatStream s = h.stream(ChatRequest.of("x"))) {
                s.forEachRemaining(c -> {});
                assertThat(s.response().receipt().providerId()).isEqualTo("remote");
            }
            assertThat(h.chatAsync(ChatRequest.of("x"))
                            .join()
                            .receipt()
                            .routeFacts()
                            .skipped())
                    .extracting(RouteFacts.Skip::member)
                    .containsExactly("local");
            // Available again: it takes calls again.
            local.unavailable(null);
            assertThat(h.chat(ChatRequest.of("hi")).receipt().providerId()).isEqualTo("local");
        }
    }

    @Test
    void whenEveryMemberIsUnavailableOrUnfitTheCallFailsAsUnavailableNamingEachReason() {
        ScriptedMember local = member("local").unavailable("no native library");
        ScriptedMember noTools = member("server").capabilities(LOCAL_LIKE);
        try (HybridClient h =
                builder().member("local", local).member("server", noTools).build()) {
            assertThatThrownBy(() -> h.chat(withTool()))
                    .isInstanceOf(ProviderUnavailableException.class)
                    .hasMessageContaining("local: unavailable: no native library")
                    .hasMessageContaining("server: no tool calling");
            assertThat(local.calls()).isZero();
            assertThat(noTools.calls()).isZero();
        }
    }

    @Test
    void jsonFormatsAndStreamingAreCheckedToo() {
        ScriptedMember noJson = member("a").capabilities(new Capabilities(true, false, true, false, 0));
        ScriptedMember any = member("b");
        try (HybridClient h = builder().member("a", noJson).member("b", any).build()) {
            ChatRequest schema = ChatRequest.builder()
                    .user("x")
                    .responseFormat(ResponseFormat.jsonSchema("s", "{\"type\":\"object\"}"))
                    .build();
            ChatRequest object = ChatRequest.builder()
                    .user("x")
                    .responseFormat(ResponseFormat.JSON_OBJECT)
                    .build();
            assertThat(h.chat(schema).receipt().attempts().get(0).error()).isEqualTo("no JSON schema answers");
            assertThat(h.chat(object).receipt().providerId()).isEqualTo("a");
            // The same request streamed cannot go to a member that does not stream.
            assertThat(h.chat(ChatRequest.of("x")).receipt().providerId()).isEqualTo("a");
            try (ChatStream s = h.stream(ChatRequest.of("x"))) {
                s.forEachRemaining(c -> {});
                assertThat(s.response().receipt().providerId()).isEqualTo("b");
                assertThat(s.response().receipt().attempts().get(0).error()).isEqualTo("no streaming");
            }
        }
    }

    @Test
    void aPromptLongerThanAMembersContextSkipsIt() {
        ScriptedMember small = member("small").capabilities(Capabilities.DEFAULTS.withContextLength(100));
        ScriptedMember large = member("large");
        try (HybridClient h =
                builder().member("small", small).member("large", large).build()) {
            ChatResponse r = h.chat(ChatRequest.of("word ".repeat(200)));
            assertThat(r.receipt().providerId()).isEqualTo("large");
            assertThat(r.receipt().attempts().get(0).error())
                    .isEqualTo("prompt of about 254 tokens exceeds its context of 100");
            assertThat(h.chat(ChatRequest.of("short")).receipt().providerId()).isEqualTo("small");
        }
    }

    @Test
    void optionsSetOnTheMemberWinOverWhatItSaysOfItself() {
        // The member says: no tools, 100 tokens. The options say: tools, 100000 tokens.
        ScriptedMember says = member("m").capabilities(new Capabilities(false, true, true, true, 100));
        MemberOptions options =
                MemberOptions.builder().tools(true).contextLength(100_000).build();
        try (HybridClient h = builder().member("m", says, options).build()) {
            assertThat(h.members().get("m").capabilities())
                    .isEqualTo(new Capabilities(true, true, true, true, 100_000));
            assertThat(h.members().get("m").options().contextLength()).isEqualTo(100_000);
            assertThat(h.chat(withTool()).receipt().providerId()).isEqualTo("m");
            assertThat(h.chat(ChatRequest.of("word ".repeat(200))).receipt().providerId())
                    .isEqualTo("m");
        }
        // And the other way round: the member says yes, the options say no.
        ScriptedMember able = member("m");
        try (HybridClient h = builder()
                .member("m", able, MemberOptions.builder().tools(false).build())
                .build()) {
            assertThatThrownBy(() -> h.chat(withTool())).isInstanceOf(InvalidRequestException.class);
            assertThat(able.calls()).isZero();
        }
        // What the options leave unset comes from the member.
        ScriptedMember local = member("local").capabilities(LOCAL_LIKE);
        try (HybridClient h = builder()
                .member("local", local, MemberOptions.builder().jsonObject(true).build())
                .build()) {
            assertThat(h.members().get("local").capabilities())
                    .isEqualTo(new Capabilities(false, false, true, true, 2048));
            assertThat(h.members().get("local").options().contextLength()).isEqualTo(2048);
        }
    }

    @Test
    void whenNoMemberCanTakeTheRequestTheCallFailsAtOnceAndSaysWhy() {
        ScriptedMember a = member("a").capabilities(LOCAL_LIKE);
        ScriptedMember b = member("b").capabilities(new Capabilities(false, true, true, true, 0));
        try (HybridClient h = builder().member("a", a).member("b", b).build()) {
            assertThatThrownBy(() -> h.chat(withTool())).isInstanceOfSatisfying(InvalidRequestException.class, e -> {
                assertThat(e.isRetryable()).isFalse();
                assertThat(e.getMessage())
                        .isEqualTo("hybrid: no member can take this request: a: no tool calling; b: no tool calling");
                assertThat(e.partialReceipt().orElseThrow().attempts())
                        .extracting(Attempt::outcome)
                        .containsExactly(Attempt.Outcome.SKIPPED, Attempt.Outcome.SKIPPED);
            });
            assertThat(a.calls() + b.calls()).isZero();
        }
    }

    @Test
    void anAliasReachesTheMemberUnderItsServedName() {
        ScriptedMember big = member("big").models("llama-70b");
        try (HybridClient h = builder()
                .member(
                        "big",
                        big,
                        MemberOptions.builder()
                                .modelAlias("big-llama", "llama-70b")
                                .build())
                .build()) {
            ChatResponse r =
                    h.chat(ChatRequest.builder().model("big-llama").user("x").build());
            assertThat(big.requests().get(0).model()).contains("llama-70b");
            assertThat(r.receipt().route()).contains("model big-llama served by big as llama-70b");
            // The served name itself goes as it is.
            h.chat(ChatRequest.builder().model("llama-70b").user("x").build());
            assertThat(big.requests().get(1).model()).contains("llama-70b");
        }
    }

    @Test
    void aMemberThatListsModelsButNotTheOneAskedForIsSkipped() {
        ScriptedMember small = member("small").models("qwen-0.5b");
        ScriptedMember big = member("big").models("llama-70b");
        ScriptedMember open = member("open"); // lists no models: takes any name unchanged
        try (HybridClient h = builder()
                .member("small", small)
                .member(
                        "big",
                        big,
                        MemberOptions.builder()
                                .modelAlias("big-llama", "llama-70b")
                                .build())
                .build()) {
            ChatResponse r =
                    h.chat(ChatRequest.builder().model("big-llama").user("x").build());
            assertThat(r.receipt().providerId()).isEqualTo("big");
            assertThat(r.receipt().attempts().get(0).error())
                    .isEqualTo("does not serve model big-llama (serves qwen-0.5b)");
            assertThat(small.calls()).isZero();
            assertThatThrownBy(() -> h.chat(
                            ChatRequest.builder().model("gpt-x").user("x").build()))
                    .isInstanceOf(InvalidRequestException.class)
                    .hasMessage(
                            "hybrid: no member can take this request: small: does not serve model gpt-x (serves qwen-0.5b);"
                                    + " big: does not serve model gpt-x (serves big-llama, llama-70b)");
        }
        try (HybridClient h =
                builder().member("small", small).member("open", open).build()) {
            h.chat(ChatRequest.builder().model("gpt-x").user("x").build());
            assertThat(open.requests().get(0).model()).contains("gpt-x");
        }
    }

    @Test
    void infoDescribesTheCompositeAndItsMembers() {
        ScriptedMember local = new ScriptedMember("local", DeploymentKind.LOCAL, Pricing.FREE, null)
                .capabilities(LOCAL_LIKE)
                .models("qwen");
        ScriptedMember remote = ScriptedMember.perToken("remote", null).models("llama");
        try (HybridClient h = builder()
                .id("front")
                .member(
                        "local",
                        local,
                        MemberOptions.builder().modelAlias("small", "qwen").build())
                .member(
                        "remote",
                        remote,
                        MemberOptions.builder().contextLength(8192).build())
                .build()) {
            ClientInfo info = h.info();
            assertThat(info.id()).isEqualTo("front");
            assertThat(info.type()).isEqualTo("hybrid");
            assertThat(info.isComposite()).isTrue();
            assertThat(info.isMixed()).isTrue();
            assertThat(info.deploymentKind()).isEqualTo(DeploymentKind.HYBRID);
            assertThat(info.members()).extracting(ClientInfo::id).containsExactly("local", "remote");
            assertThat(info.members())
                    .extracting(ClientInfo::deploymentKind)
                    .containsExactly(DeploymentKind.LOCAL, DeploymentKind.SERVER);
            assertThat(info.models()).containsExactly("qwen", "llama");
            assertThat(info.modelAliases()).containsEntry("small", "qwen");
            assertThat(info.capabilities()).isEqualTo(new Capabilities(true, true, true, true, 8192));
            assertThat(info.acceptsModel("small")).isTrue();
            assertThat(info.acceptsModel("gpt-x")).isFalse();

            ScriptedMember typed = h.member("local", ScriptedMember.class);
            assertThat(typed).isSameAs(local);
            assertThatThrownBy(() -> h.member("nope", ScriptedMember.class))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessage("front has no member \"nope\"; members: local, remote");
            assertThatThrownBy(() -> h.member("local", HybridClient.class))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessage("member local is a ScriptedMember, not a HybridClient");
            // Several members: unwrap finds only the composite itself.
            assertThat(h.unwrap(ScriptedMember.class)).isEmpty();
            assertThat(h.unwrap(HybridClient.class)).containsSame(h);
        }
        try (HybridClient one =
                builder().member("remote", ScriptedMember.perToken("r", null)).build()) {
            assertThat(one.info().isMixed()).isFalse();
            assertThat(one.unwrap(ScriptedMember.class)).isPresent();
        }
    }

    @Test
    void aNestedCompositeAcceptsWhatItsMembersAccept() {
        ScriptedMember inner = member("inner").models("llama-70b");
        ScriptedMember other = member("other").models("qwen");
        try (HybridClient nested = builder()
                        .id("nested")
                        .member(
                                "inner",
                                inner,
                                MemberOptions.builder()
                                        .modelAlias("big", "llama-70b")
                                        .build())
                        .build();
                HybridClient outer = builder()
                        .member("other", other)
                        .member("nested", nested)
                        .closeMembers(false)
                        .build()) {
            ChatResponse r =
                    outer.chat(ChatRequest.builder().model("big").user("x").build());
            assertThat(r.receipt().providerId()).isEqualTo("inner");
            assertThat(inner.requests().get(0).model()).contains("llama-70b");
            assertThat(other.calls()).isZero();
        }
    }

    @Test
    void theColdStartProfileOfAMemberFillsAnUnsetIdleTimeout() {
        ClientInfo info = ClientInfo.builder("s", "serverless", DeploymentKind.SERVERLESS, Pricing.FREE)
                .coldStart(ClientInfo.ColdStartProfile.scalesToZero(Duration.ofMinutes(15), 0))
                .build();
        assertThat(MemberOptions.DEFAULTS.withDefaultsFrom(info).idleTimeout()).isEqualTo(Duration.ofMinutes(15));
        assertThat(MemberOptions.builder()
                        .idleTimeout(Duration.ofMinutes(5))
                        .build()
                        .withDefaultsFrom(info)
                        .idleTimeout())
                .isEqualTo(Duration.ofMinutes(5));
        ClientInfo warmFloor = info.toBuilder()
                .coldStart(ClientInfo.ColdStartProfile.scalesToZero(Duration.ofMinutes(15), 1))
                .build();
        assertThat(MemberOptions.DEFAULTS.withDefaultsFrom(warmFloor).idleTimeout())
                .isNull();
    }

    @Test
    void aProviderThatSaysNothingTakesEverything() {
        ScriptedMember plain = member("plain");
        assertThat(plain.info().capabilities()).isEqualTo(Capabilities.DEFAULTS);
        assertThat(plain.info().coldStart()).isEqualTo(ClientInfo.ColdStartProfile.NONE);
        assertThat(new ClientInfo("x", "t", DeploymentKind.SERVER, List.of(), Pricing.FREE).capabilities())
                .isEqualTo(Capabilities.DEFAULTS);
        try (HybridClient h = builder().member("plain", plain).build()) {
            assertThat(h.chat(withTool()).receipt().providerId()).isEqualTo("plain");
        }
    }
}
