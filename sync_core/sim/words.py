"""Word lists for realistic-looking generated data (products, people, places, messages)."""

PRODUCTS = [
    # (category word, title noun, eBay leaf category id, base price in cents)
    ("SHO", "Running Shoes", "15709", 5999), ("TSH", "Cotton T-Shirt", "15687", 1499),
    ("JKT", "Denim Jacket", "57988", 4999), ("WAT", "Analog Wrist Watch", "31387", 8999),
    ("HDP", "Wireless Headphones", "112529", 3999), ("CAB", "USB-C Charging Cable", "44932", 899),
    ("CAS", "Phone Case", "20349", 1299), ("LMP", "LED Desk Lamp", "112581", 2499),
    ("MUG", "Ceramic Coffee Mug", "20693", 1199), ("KNF", "Chef Knife", "20672", 3499),
    ("BAG", "Leather Messenger Bag", "169291", 7999), ("BLT", "Leather Belt", "2993", 1999),
    ("SUN", "Polarized Sunglasses", "79720", 2199), ("TOY", "Wooden Puzzle Toy", "19169", 1599),
    ("BKS", "Hardcover Cookbook", "261186", 1899), ("VIN", "Vinyl Record LP", "176985", 2499),
    ("CAM", "Vintage Film Camera", "15230", 12999), ("LEG", "Building Block Set", "19006", 4499),
    ("DRL", "Cordless Drill", "20779", 8999), ("GLV", "Work Gloves", "184516", 999),
    ("PEN", "Fountain Pen", "41683", 2999), ("RUG", "Wool Area Rug", "20582", 10999),
    ("SPK", "Bluetooth Speaker", "111694", 4999), ("KBD", "Mechanical Keyboard", "33963", 6999),
    ("MOU", "Wireless Mouse", "23160", 1999), ("BTL", "Insulated Water Bottle", "177009", 1799),
    ("YOG", "Yoga Mat", "158923", 2599), ("TNT", "Camping Tent", "179010", 11999),
    ("CRD", "Trading Card Lot", "183454", 999), ("POS", "Framed Art Print", "360", 3499),
]

ADJECTIVES = [
    "Vintage", "Classic", "Premium", "Rugged", "Compact", "Deluxe", "Modern", "Handmade", "Pro",
    "Lightweight", "Heavy Duty", "Retro", "Slim", "Eco", "Waterproof", "Original", "Limited Edition",
]
COLORS = ["Black", "White", "Red", "Blue", "Green", "Grey", "Brown", "Navy", "Olive", "Tan", "Pink"]
BRANDS = ["Acme", "Northwind", "Contoso", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli",
          "Vandelay", "Soylent", "Tyrell", "Wonka", "Gringotts", "Monarch"]
CONDITIONS = ["NEW", "NEW", "NEW", "NEW_OTHER", "USED_EXCELLENT", "USED_GOOD", "LIKE_NEW"]

FIRST = ["James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William",
         "Elizabeth", "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
         "Carlos", "Maria", "Wei", "Aisha", "Olga", "Kenji", "Priya", "Liam", "Emma", "Noah", "Ava"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
        "Martinez", "Hernandez", "Lopez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson",
        "Martin", "Lee", "Nguyen", "Patel", "Kim", "Chen", "Okafor", "Schmidt", "Rossi", "Novak"]
NICK = ["deals", "collector", "shopper", "buyer", "finds", "trader", "fan", "hunter", "vault", "store"]

# (city, state, zip prefix, state sales tax basis points)
PLACES = [
    ("Austin", "TX", "787", 825), ("Seattle", "WA", "981", 1025), ("Denver", "CO", "802", 881),
    ("Miami", "FL", "331", 700), ("Chicago", "IL", "606", 1025), ("Portland", "OR", "972", 0),
    ("Boston", "MA", "021", 625), ("Phoenix", "AZ", "850", 860), ("Atlanta", "GA", "303", 890),
    ("Columbus", "OH", "432", 750), ("Nashville", "TN", "372", 925), ("San Jose", "CA", "951", 938),
    ("Brooklyn", "NY", "112", 888), ("Madison", "WI", "537", 550), ("Wilmington", "DE", "198", 0),
    ("Anchorage", "AK", "995", 0), ("Raleigh", "NC", "276", 725), ("Omaha", "NE", "681", 700),
]
STREETS = ["Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Pine St", "Elm St", "Washington Blvd",
           "Lakeview Rd", "Hillcrest Ave", "Sunset Blvd", "River Rd", "Park Pl"]

MEMBER_QUESTIONS = [
    "Hi, is this item still available?",
    "Can you combine shipping if I buy two?",
    "What are the exact measurements?",
    "Would you accept a lower offer?",
    "When will my order ship?",
    "The package has not arrived yet, can you check the tracking?",
    "Is this the original packaging?",
    "Does it come with a warranty?",
]
SELLER_ANSWERS = [
    "Thanks for your message! Yes, it is available.",
    "Sure, I can combine shipping. Please add both to your cart.",
    "I'll measure it tonight and get back to you.",
    "It ships within one business day.",
    "Tracking shows it is out for delivery today.",
    "Yes, it comes in the original box.",
]
EBAY_NOTICES = [
    ("Your item sold!", "Congratulations, your item sold. Please ship it within your handling time."),
    ("Payout sent", "We sent a payout to your bank account."),
    ("Policy update", "We're updating the eBay User Agreement. Please review the changes."),
    ("Action needed: payment dispute", "A buyer opened a payment dispute. Please respond by the due date."),
    ("Listing ending soon", "Your listing ends in 24 hours."),
    ("Seller performance update", "Your seller level has been updated."),
]
