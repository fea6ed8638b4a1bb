import EmberCore
import EmberLM
import Foundation
import Testing
import Ember

/// The parts of an extraction around the model: the prompt by model kind, grounding against the
/// note, and the end of a list at its first repeated item.
@Suite("Extraction: prompts, grounding, repeated items")
struct ExtractionTests {
    static let actionItems = #"""
        {"type":"object","properties":{"items":{"type":"array","maxItems":8,"items":{"type":"object",
         "properties":{"task":{"type":"string"},"owner":{"type":["string","null"]},"due":{"type":["string","null"],"format":"date"}},
         "required":["task","owner","due"],"additionalProperties":false}}},"required":["items"],"additionalProperties":false}
        """#

    static func parse(_ text: String) throws -> JSONValue { try JSONValue.parse(text) }

    static let note = """
        Rosa will repaint the garage door before the 12th. Order 40 tiles from the shop in Leith.
        Ask Dmitri to fix the gate; call him on +44 131 496 0000.
        """

    @Test("Grounding keeps what the note supports and drops invented items, names, dates and numbers")
    func grounding() throws {
        let schema = try Self.parse(Self.actionItems)
        let document = try Self.parse(#"""
            {"items":[
              {"task":"Repaint the garage door","owner":"Rosa","due":"2025-06-12"},
              {"task":"Buy milk and eggs","owner":null,"due":null},
              {"task":"Order tiles","owner":"Jonathan","due":"2025-06-03"},
              {"task":"Ask Dmitri to fix the gate","owner":"D.I.M.A.S.A.S","due":null},
              {"task":"repaint the  Garage door","owner":"Rosa","due":"2025-06-12"},
              {"task":"","owner":null,"due":null}]}
            """#)
        let grounded = ExtractionGrounding().ground(document, schema: schema, note: Self.note)
        // Invented task dropped, invented owners (a name, a run of single letters) and day nulled,
        // repeated and empty items dropped.
        #expect(grounded.compactText == #"{"items":[{"task":"Repaint the garage door","owner":"Rosa","due":"2025-06-12"},{"task":"Order tiles","owner":null,"due":null},{"task":"Ask Dmitri to fix the gate","owner":null,"due":null}]}"#)
        let grammar = try Grammar(.jsonSchema(Self.actionItems))
        #expect(grammar.accepts(grounded.compactText))
    }

    @Test("Numbers must be written in the note; nullable patterned strings (a phone) must be too, up to punctuation")
    func numbersAndPatterns() throws {
        let schema = try Self.parse(#"""
            {"type":"object","properties":{"list":{"type":"array","items":{"type":"object","properties":{
              "item":{"type":"string"},"amount":{"type":"number"},"phone":{"type":["string","null"],"pattern":"[0-9 +]+"},
              "currency":{"type":"string","pattern":"[A-Z]{3}"}},"required":["item","amount","phone","currency"]}}},"required":["list"]}
            """#)
        let note = "Paid 1.250,50 for the sofa and 12,5 for tiles. Shop: +44 131 496 0000."
        let document = try Self.parse(#"""
            {"list":[{"item":"sofa","amount":1250.5,"phone":"441314960000","currency":"EUR"},
                     {"item":"tiles","amount":12.5,"phone":"+1 555 0100","currency":"EUR"},
                     {"item":"tiles","amount":99,"phone":null,"currency":"EUR"}]}
            """#)
        let grounded = ExtractionGrounding().ground(document, schema: schema, note: note)
        // The invented phone becomes null; the invented amount (not nullable) drops its item; the currency code stays.
        #expect(grounded.compactText == #"{"list":[{"item":"sofa","amount":1250.5,"phone":"441314960000","currency":"EUR"},{"item":"tiles","amount":12.5,"phone":null,"currency":"EUR"}]}"#)
    }

    @Test("A list never falls below its minItems: then it is kept as written")
    func minimumItems() throws {
        let schema = try Self.parse(#"{"type":"object","properties":{"names":{"type":"array","minItems":1,"items":{"type":"string"}}},"required":["names"]}"#)
        let document = try Self.parse(#"{"names":["Zebedee"]}"#)
        #expect(ExtractionGrounding().ground(document, schema: schema, note: "Nobody here.") == document)
        let grounded = ExtractionGrounding().ground(try Self.parse(#"{"names":["Zebedee","Rosa"]}"#), schema: schema, note: "Rosa came.")
        #expect(grounded.compactText == #"{"names":["Rosa"]}"#)
    }

    @Test("A list ends at its first repeated item: the watch gives the text before it, the grammar completes it")
    func repeatedItems() throws {
        var watch = RepeatedItemWatch()
        let pieces = [#"{"items": [{"task": "A b", "owner": null},"#, "\n ", #"{"task": "C", "owner": "D"}, "#,
                      #"{"task": "a  B", "owner": null}"#, ","]
        var kept: String?
        for piece in pieces {
            kept = watch.append(piece)
            if kept != nil { break }
        }
        let text = try #require(kept, "the repeated item should be noticed at the comma after it")
        #expect(text == #"{"items": [{"task": "A b", "owner": null},"# + "\n " + #"{"task": "C", "owner": "D"}"#)
        let schema = #"{"type":"object","properties":{"items":{"type":"array","items":{"type":"object","properties":{"task":{"type":"string"},"owner":{"type":["string","null"]}},"required":["task","owner"]}}},"required":["items"]}"#
        let grammar = try Grammar(.jsonSchema(schema))
        let completion = try #require(grammar.shortestCompletion(after: Array(text.utf8)))
        #expect(String(decoding: completion, as: UTF8.self) == "]}")
        #expect(grammar.accepts(text + "]}"))

        // Different items, strings holding brackets and commas, nested lists: no stop.
        var calm = RepeatedItemWatch()
        for piece in [#"{"a": [["x", "y"], ["x,]", "z"], "#, #"["x", "w, {"], 1, 2]}"#] {
            #expect(calm.append(piece) == nil)
        }
    }

    @Test("The prompt suits the model: a chat turn with a template, a completion without, fields stated in words")
    func promptStyles() throws {
        let schema = try Self.parse(Self.actionItems)
        #expect(ExtractionPrompt.fields(of: schema)
            == #"{"items": a list of {"task": text, "owner": text or null, "due": a date YYYY-MM-DD or null}}"#)
        let chat = ExtractionPrompt(style: .chat).extraction(title: "Garden", note: Self.note, schema: schema, instruction: "List the action items.")
        guard case .chat(let messages) = chat else { Issue.record("a chat model gets a chat turn: \(chat)"); return }
        #expect(messages.map(\.role) == [.system, .user])
        #expect(messages[1].content.hasPrefix("Note title: Garden\nNote:\n"))
        #expect(messages[1].content.hasSuffix("List the action items.\nAnswer with JSON: " + ExtractionPrompt.fields(of: schema)))
        let completion = ExtractionPrompt(style: .completion).extraction(title: "Garden", note: Self.note, schema: schema,
                                                                           instruction: "List the action items.")
        guard case .text(let text) = completion else { Issue.record("a pretrained model gets a text to continue"); return }
        #expect(text.hasPrefix(ExtractionPrompt.example))
        #expect(text.hasSuffix("Note: Garden\n\(Self.note)\n\nRequest: List the action items.\nFormat: \(ExtractionPrompt.fields(of: schema))\nJSON:\n"))
        let labels = ExtractionPrompt(style: .completion).classification(title: "Garden", note: "x", labels: ["a", "b"])
        guard case .text(let labelText) = labels else { Issue.record("\(labels)"); return }
        #expect(labelText.hasSuffix("Label:\n"))
    }

    @Test("Prompt style by model: SmolLM2 (chat template) chats, Gemma 3 270M (pretrained, no template) completes",
          .enabled(if: EngineModel.available, "the models are not cached (EMBER_REQUIRE_MODELS=1 requires them)"),
          arguments: [("SmolLM2-135M-Instruct.Q4_1.gguf", ExtractionPrompt.Style.chat), ("gemma-3-270m-q4_k_m.gguf", .completion)])
    func styleByModel(file: String, style: ExtractionPrompt.Style) throws {
        let path = (EngineModel.path as NSString).deletingLastPathComponent + "/" + file
        try #require(FileManager.default.fileExists(atPath: path), "\(file) is missing; run `ember models fetch`")
        let model = try LanguageModel(path: path)
        #expect(ExtractionPrompt.style(for: model) == style)
        #expect(NoteExtractor(model: model, threads: 1).prompt.style == style)
    }
}
