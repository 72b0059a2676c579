package dev.hybridinference.testkit.internal;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The deterministic text the testkit's emulators answer when no answer is scripted: words from a fixed list,
 * chosen by a generator seeded with the prompt, the request's seed and the emulator's seed, so that the same
 * request to an emulator built the same way always gets the same words.
 *
 * <p>Shared by the testkit's emulators; not part of the testkit's API.
 */
public final class GeneratedText {
    /** The words generated text is drawn from. */
    public static final List<String> WORDS = List.of(
            "the", "model", "answers", "with", "a", "short", "list", "of", "plain", "words", "that", "read", "like",
            "text", "and", "stay", "amber", "same", "for", "each", "prompt", "river", "stone", "cloud", "lamp",
            "garden", "signal", "harbor", "window", "engine", "paper", "orbit", "maple", "copper", "silent", "bright",
            "quick", "gentle", "distant", "hidden", "steady", "north", "south", "east", "west", "morning", "evening",
            "winter", "summer", "bridge", "valley", "forest", "meadow", "island", "mirror", "thread", "anchor",
            "lantern", "compass", "canvas", "pebble", "ember", "tide", "echo");

    private GeneratedText() {}

    /**
     * {@code count} words from {@link #WORDS} as streamed pieces: the first bare, each other after one space, so
     * that joining them gives the text.
     *
     * @param prompt the prompt text (hashed as UTF-8)
     * @param requestSeed the request's own seed, or null when it has none
     * @param emulatorSeed the emulator's seed
     * @param count how many words
     * @return the pieces, in order
     */
    public static List<String> pieces(String prompt, Long requestSeed, long emulatorSeed, int count) {
        long h = 0xcbf29ce484222325L; // FNV-1a over the prompt's UTF-8 bytes
        for (byte b : prompt.getBytes(StandardCharsets.UTF_8)) {
            h ^= b & 0xFF;
            h *= 0x100000001b3L;
        }
        h = mix(h ^ mix(requestSeed == null ? 0x5DEECE66DL : requestSeed + 1));
        h = mix(h ^ mix(emulatorSeed + 0x9E3779B97F4A7C15L));
        SplittableRandom random = new SplittableRandom(h);
        List<String> pieces = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            String w = WORDS.get(random.nextInt(WORDS.size()));
            pieces.add(i == 0 ? w : " " + w);
        }
        return pieces;
    }

    /**
     * Splits text into words, each with the whitespace before it (trailing whitespace stays with the last word),
     * so that the pieces join to the text exactly: how the emulators stream a scripted answer, one word per chunk.
     */
    public static List<String> exactPieces(String text) {
        List<String> pieces = new ArrayList<>();
        int lastWordChar = text.length() - 1;
        while (lastWordChar >= 0 && Character.isWhitespace(text.charAt(lastWordChar))) {
            lastWordChar--;
        }
        int start = 0;
        for (int i = 1; i < lastWordChar; i++) {
            if (!Character.isWhitespace(text.charAt(i - 1))
                    && Character.isWhitespace(text.charAt(i))
                    && !text.substring(start, i).isBlank()) {
                pieces.add(text.substring(start, i));
                start = i;
            }
        }
        if (start < text.length()) {
            pieces.add(text.substring(start));
        }
        return pieces;
    }

    /** Counts whitespace-separated words: the emulators' stand-in for a tokenizer's count. */
    public static int words(String text) {
        String t = text.strip();
        return t.isEmpty() ? 0 : t.split("\\s+").length;
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }
}
