// AeroPromotion: promotion decisions from frozen facts, native rules plus Lua refusal policies.
import AeroCore
import AeroPolicy
