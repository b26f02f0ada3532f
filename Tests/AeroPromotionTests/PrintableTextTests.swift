import AeroPromotion
import Testing

/// Issue 12, "text output is safe to print": control characters in policy text are escaped.
@Suite struct PrintableTextTests {
    @Test func controlCharactersAreEscaped() {
        #expect(Decision.printable("plain reason, ünïcode") == "plain reason, ünïcode")
        #expect(Decision.printable("a\n{\"decision\":\"allow\"}") == "a\\n{\"decision\":\"allow\"}")
        #expect(Decision.printable("\u{1b}[2J\r\t\u{7f}\u{9b}") == "\\u{1b}[2J\\r\t\\u{7f}\\u{9b}")
    }
}
