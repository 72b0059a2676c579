package dev.hybridinference.core.routing;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.Message;
import java.util.Objects;
import java.util.function.Predicate;
import java.util.regex.Pattern;

/**
 * Maps requests to a tier. Rules are tried in order; the first that matches picks the tier.
 *
 * @param description what the rule checks, shown in the route reason
 * @param predicate the test
 * @param tier the tier it picks
 */
public record TierRule(String description, Predicate<ChatRequest> predicate, String tier) {
    /** Checks that every part is present. */
    public TierRule {
        Objects.requireNonNull(description, "description");
        Objects.requireNonNull(predicate, "predicate");
        Objects.requireNonNull(tier, "tier");
    }

    /** Matches the request's model alias; {@code *} is a wildcard ({@code small-*}). */
    public static TierRule model(String glob, String tier) {
        Pattern p = Pattern.compile(glob.replace(".", "\\.").replace("*", ".*"));
        return new TierRule(
                "model " + glob, r -> r.model().map(m -> p.matcher(m).matches()).orElse(false), tier);
    }

    /** Matches requests whose estimated prompt is at most {@code tokens} tokens. */
    public static TierRule promptTokensAtMost(int tokens, String tier) {
        return new TierRule("prompt <= " + tokens + " tokens", r -> estimatePromptTokens(r) <= tokens, tier);
    }

    /** Matches requests whose estimated prompt is more than {@code tokens} tokens. */
    public static TierRule promptTokensAbove(int tokens, String tier) {
        return new TierRule("prompt > " + tokens + " tokens", r -> estimatePromptTokens(r) > tokens, tier);
    }

    /** Matches requests carrying the tag {@code key=value}. */
    public static TierRule tag(String key, String value, String tier) {
        return new TierRule(
                "tag " + key + "=" + value, r -> value.equals(r.options().tags().get(key)), tier);
    }

    /** Matches what {@code predicate} accepts. */
    public static TierRule custom(String description, Predicate<ChatRequest> predicate, String tier) {
        return new TierRule(description, predicate, tier);
    }

    /**
     * A quick estimate of the prompt's tokens without a tokenizer: characters / 4 plus 4 per message,
     * the usual rule of thumb for English text with BPE vocabularies.
     */
    public static long estimatePromptTokens(ChatRequest request) {
        long chars = 0;
        for (Message m : request.messages()) {
            chars += m.content().length();
        }
        return chars / 4 + 4L * request.messages().size();
    }
}
