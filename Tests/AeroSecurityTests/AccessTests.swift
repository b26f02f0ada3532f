import AeroCore
import AeroSecurity
import Testing

@Suite("Roles and access")
struct AccessTests {
    @Test("roles are cumulative; member-only access is never granted by a token; insecure allows all")
    func matrix() {
        let reader = Principal.token(name: "r", roles: [.reader])
        let writer = Principal.token(name: "w", roles: [.writer])
        let op = Principal.token(name: "o", roles: [.operator])
        let member = Principal.member("n2")
        #expect(Access.allCases.filter { reader.allows($0) } == [.read])
        #expect(Access.allCases.filter { writer.allows($0) } == [.read, .write])
        #expect(Access.allCases.filter { op.allows($0) } == [.read, .write, .operate, .memberOrOperator])
        #expect(Access.allCases.filter { member.allows($0) } == [.read, .member, .memberOrOperator], "a candidate reads its peers' status")
        #expect(Access.allCases.allSatisfy { Principal.insecure.allows($0) })
        #expect(!Principal.token(name: "none", roles: [.reader, .writer]).allows(.operate))
        #expect(op.description == "token:o" && member.description == "member:n2")
    }
}
